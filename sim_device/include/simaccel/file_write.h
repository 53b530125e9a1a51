// The one way simaccel writes a file (stats-file, trace-file; every output file to come).
#pragma once

#include <string>
#include <string_view>

namespace simaccel {

// Replaces the file at `path` with `data`, never following a link and never exposing a partly
// written file: the data goes to a new file created with O_CREAT|O_EXCL|O_NOFOLLOW next to the
// target, which is then renamed over `path`. A symbolic link planted at `path` (e.g. in a shared
// /tmp, to make a privileged process overwrite another file) is itself replaced; its target is
// not touched. Anything else already at `path` (a directory, a device node such as /dev/null, a
// FIFO) is refused, not replaced. The file is created with mode 0666 less the umask, as fopen
// would; links in the directories of the path are followed as usual. Returns false with a
// message naming the path and the failing step in *err; nothing is left behind on failure.
[[nodiscard]] bool write_file_atomically(const std::string &path, std::string_view data,
                                         std::string *err) noexcept;

// `path` with every `%p` replaced by the process id (stats-file, trace-file: one file per
// forked worker).
std::string expand_pid(std::string path);

} // namespace simaccel
