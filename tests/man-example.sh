# Sourced by tests: man_example PAGE prints the program in the EXAMPLES
# section of a man page (the first .Bd -literal display, roff escapes
# undone) as C source.
man_example() {
	awk '/^\.Sh / { ex = ($0 == ".Sh EXAMPLES") }
	     bd && /^\.Ed/ { exit }
	     bd { print }
	     ex && /^\.Bd -literal/ { bd = 1 }' "$1" |
		sed -e 's/\\&//g' -e 's/\\-/-/g' -e 's/\\e/\\/g'
}
