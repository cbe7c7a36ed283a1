// See test_certificates.hpp.
#include "support/test_certificates.hpp"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>

#include "support/process.hpp"

namespace tern::test {

const TestCertificates& testCertificates() {
  static const TestCertificates certs = [] {
    char dir[] = "/tmp/tern-test-certs-XXXXXX";
    if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    // Removed when the test program exits (each ctest test is a program of its own, so
    // without this every TLS test run left a directory behind). Child processes leave by
    // _exit, so only the program that made it removes it.
    static char made[sizeof dir];
    std::memcpy(made, dir, sizeof dir);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(made, ignored);
    });
    TestCertificates c{dir, std::string(dir) + "/ca.pem", std::string(dir) + "/chain.pem",
                       std::string(dir) + "/server.key"};
    const std::string script =
        "set -e; cd " + c.dir +
        "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout ca.key -out ca.pem -subj /CN=tern-test-ca -days 1 2>/dev/null"
        "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null"
        "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf"
        "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem"
        " -days 1 -extfile ext.cnf 2>/dev/null"
        "; cat server.pem ca.pem > chain.pem";
    auto r = runCommand({"/bin/bash", "-c", script});
    if (r.status != 0) throw std::runtime_error("making test certificates failed: " + r.output);
    return c;
  }();
  return certs;
}

const TestCertificates& testCertificatesFor(const std::string& ip) {
  static std::mutex mutex;
  static std::map<std::string, TestCertificates> made;
  const std::lock_guard lock(mutex);
  if (auto it = made.find(ip); it != made.end()) return it->second;
  const auto& base = testCertificates();
  const std::string dir = base.dir + "/" + ip;
  TestCertificates c{dir, base.ca, dir + "/chain.pem", dir + "/server.key"};
  const std::string script =
      "set -e; mkdir -p " + c.dir + "; cd " + c.dir +
      "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      " -keyout server.key -out server.csr -subj /CN=" + ip + " 2>/dev/null"
      "; printf 'subjectAltName=IP:" + ip + "\\nextendedKeyUsage=serverAuth\\n' > ext.cnf"
      "; openssl x509 -req -in server.csr -CA " + base.ca + " -CAkey " + base.dir + "/ca.key -CAcreateserial"
      " -out server.pem -days 1 -extfile ext.cnf 2>/dev/null"
      "; cat server.pem " + base.ca + " > chain.pem";
  auto r = runCommand({"/bin/bash", "-c", script});
  if (r.status != 0) {
    throw std::runtime_error("making a test certificate for " + ip + " failed: " + r.output);
  }
  return made.emplace(ip, std::move(c)).first->second;
}

}  // namespace tern::test
