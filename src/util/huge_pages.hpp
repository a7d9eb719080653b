// Transparent huge pages for large tables read at random (a million-user
// passwd-file): one TLB entry per 2 MiB instead of per 4 KiB. Debian's
// default THP mode is "madvise", so the memory has to ask. Call it on memory
// just allocated and not yet touched; pages faulted in afterwards are huge
// where the kernel can make them so. Small ranges are left alone.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace postern::util {

inline void advise_huge_pages(const void* data, std::size_t size) {
    constexpr std::uintptr_t kHuge = 2u << 20;
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + size) & ~(kHuge - 1);
    if (end <= begin) return;
    // Advice only: without THP support it fails and nothing changes.
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace postern::util
