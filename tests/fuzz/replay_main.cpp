// Runs a libFuzzer target over files, without libFuzzer: every CI build (gcc included) replays
// the committed corpora and regressions through each target. Arguments are files or
// directories (their regular files, in name order; README* files are documentation and are
// skipped). A missing path or a directory with no files at all is an error, so a mistyped
// corpus path cannot pass by replaying nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool isDocumentation(const fs::path& p) { return p.filename().string().starts_with("README"); }

bool readFile(const fs::path& p, std::vector<std::uint8_t>& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      bool any_file = false;
      for (const auto& entry : fs::directory_iterator(arg, ec)) {
        if (!entry.is_regular_file()) continue;
        any_file = true;
        if (!isDocumentation(entry.path())) files.push_back(entry.path());
      }
      if (ec) {
        std::fprintf(stderr, "cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
        return 1;
      }
      if (!any_file) {
        std::fprintf(stderr, "directory %s is empty\n", arg.c_str());
        return 1;
      }
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", arg.c_str());
      return 1;
    }
  }

  std::size_t replayed = 0;
  std::vector<std::uint8_t> bytes;
  for (const fs::path& p : inputs) {
    if (!readFile(p, bytes)) {
      std::fprintf(stderr, "cannot read %s\n", p.c_str());
      return 1;
    }
    // Named before running, so a crash report is followed by nothing and the last name printed
    // is the input that crashed.
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", p.c_str(), bytes.size());
    // Copied to an exact-size allocation, as libFuzzer does, so AddressSanitizer sees over-reads.
    auto exact = std::make_unique<std::uint8_t[]>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), bytes.size());
    ++replayed;
  }
  std::printf("replayed %zu inputs\n", replayed);
  return 0;
}
