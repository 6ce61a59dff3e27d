// SPDX-License-Identifier: GPL-2.0-or-later
// bench-shm-boost: the Boost.Interprocess reference for bench-shm. Same
// workload (random replace, 16 B..4 KiB, 10k blocks freed first, first
// 8 bytes written) on a
// managed_shared_memory segment in /dev/shm. Prints one number: the median
// ns per free+alloc pair per thread.
//   bench-shm-boost LIVE THREADS OPS RUNS
#include <boost/interprocess/managed_shared_memory.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#include <time.h>
#include <unistd.h>

namespace bip = boost::interprocess;

static uint64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t xs(uint64_t &s)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

static inline size_t rand_size(uint64_t &s)
{
	return 16 + (size_t)(xs(s) % (4096 - 16 + 1));
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: bench-shm-boost LIVE THREADS OPS RUNS\n");
		return 2;
	}
	size_t live = strtoull(argv[1], nullptr, 10);
	int threads = atoi(argv[2]);
	long ops = atol(argv[3]);
	int runs = atoi(argv[4]);
	std::vector<double> res;
	std::string name = "memkit-bench-boost." + std::to_string(getpid());

	for (int run = 0; run < runs; run++) {
		bip::shared_memory_object::remove(name.c_str());
		// Room for the live set at the largest size plus allocator overhead.
		size_t seg = (live + 10000) * 4200 + (64u << 20);
		bip::managed_shared_memory shm(bip::create_only, name.c_str(), seg);
		std::vector<uint64_t> ns(threads);
		std::vector<std::thread> ts;
		for (int t = 0; t < threads; t++) {
			ts.emplace_back([&, t] {
				uint64_t s = 0x9e3779b97f4a7c15ull * (run + 1) + (uint64_t)t;
				size_t n = live / threads;
				size_t extra = 10000 / threads;
				std::vector<void *> slots(n + extra);
				for (size_t i = 0; i < n + extra; i++) {
					slots[i] = shm.allocate(rand_size(s));
					memset(slots[i], 1, 8);
				}
				// Same start as bench-shm: 10k blocks freed before timing.
				for (size_t i = n; i < n + extra; i++)
					shm.deallocate(slots[i]);
				slots.resize(n);
				uint64_t t0 = now_ns();
				for (long i = 0; i < ops / threads; i++) {
					size_t k = (size_t)(xs(s) % n);
					shm.deallocate(slots[k]);
					slots[k] = shm.allocate(rand_size(s));
					memset(slots[k], 2, 8);
				}
				ns[t] = now_ns() - t0;
				for (void *p : slots)
					shm.deallocate(p);
			});
		}
		for (auto &t : ts)
			t.join();
		res.push_back((double)*std::max_element(ns.begin(), ns.end()) / (double)(ops / threads));
		bip::shared_memory_object::remove(name.c_str());
	}
	std::sort(res.begin(), res.end());
	printf("%.1f\n", res[res.size() / 2]);
	return 0;
}
