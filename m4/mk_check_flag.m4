# MK_CHECK_COMPILE_FLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT], [EXTRA-FLAGS])
# Compile (and link) an empty program with FLAG added to CFLAGS.
AC_DEFUN([MK_CHECK_COMPILE_FLAG], [
  AS_VAR_PUSHDEF([mk_cv], [mk_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [mk_cv], [
    mk_save_CFLAGS="$CFLAGS"
    CFLAGS="$CFLAGS $4 $1"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
                   [AS_VAR_SET([mk_cv], [yes])], [AS_VAR_SET([mk_cv], [no])])
    CFLAGS="$mk_save_CFLAGS"])
  AS_VAR_IF([mk_cv], [yes], [$2], [$3])
  AS_VAR_POPDEF([mk_cv])
])
