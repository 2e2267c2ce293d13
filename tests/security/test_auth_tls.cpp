// Authentication and TLS against a real nats-server: right credentials work, wrong ones are
// refused with a clear error; TLS verifies the server (CA and host name) and presents a
// client certificate. Keys and certificates are made by openssl for each run, never committed.
#include <catch2/catch.hpp>

#include <fstream>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;

namespace {

errc connect_error(const Config& c, std::string* message = nullptr) {
  NatsBackend backend(c);
  try {
    backend.connect_sync();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  backend.close_sync();
  return errc{};
}

// A CA, a server certificate for `server_host`, and a client certificate, in `dir`.
struct Pki {
  std::filesystem::path dir;
  std::string ca, server_cert, server_key, client_cert, client_key;

  Pki(const std::filesystem::path& where, const std::string& name, const std::string& server_san) : dir(where / name) {
    std::filesystem::create_directories(dir);
    const std::string d = dir.string();
    const std::string quiet = " >/dev/null 2>&1";
    auto run = [&](const std::string& cmd) { REQUIRE(test::sh("cd '" + d + "' && " + cmd + quiet) == 0); };
    run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=" + name + "-ca");
    run("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=server");
    std::ofstream(dir / "srv.ext") << "subjectAltName=" << server_san << "\nextendedKeyUsage=serverAuth\n";
    run("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile srv.ext");
    run("openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=worker1");
    std::ofstream(dir / "cli.ext") << "extendedKeyUsage=clientAuth\n";
    run("openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 1 -extfile cli.ext");
    ca = (dir / "ca.pem").string();
    server_cert = (dir / "srv.pem").string();
    server_key = (dir / "srv.key").string();
    client_cert = (dir / "cli.pem").string();
    client_key = (dir / "cli.key").string();
  }

  std::string server_block(bool verify_clients) const {
    return "tls { cert_file: \"" + server_cert + "\", key_file: \"" + server_key + "\", ca_file: \"" + ca +
           "\", verify: " + (verify_clients ? "true" : "false") + ", timeout: 2 }\n";
  }
};

// The certificates of the TLS test, made once per run: each SECTION enters the test case
// again, and making RSA keys is slow.
struct TlsMaterial {
  test::TempDir tmp;
  Pki good{tmp.path, "good", "DNS:localhost,IP:127.0.0.1"};
  Pki other{tmp.path, "other", "DNS:localhost,IP:127.0.0.1"};
  Pki wrong_host{tmp.path, "wronghost", "DNS:not-this-host.example"};
};
const TlsMaterial& tls_material() {
  static const TlsMaterial material;
  return material;
}

}  // namespace

TEST_CASE("user and password: the right ones connect, wrong ones are refused clearly", "[security]") {
  LocalServer server(LocalServerOptions{.config_text = "authorization { user: omniq, password: s3cret }\n"});
  Config c = test::config_for(server);
  c.user = "omniq";
  c.password = "s3cret";
  CHECK(connect_error(c) == errc{});

  c.password = "wrong";
  std::string message;
  CHECK(connect_error(c, &message) == errc::auth_failed);
  CHECK_THAT(message, Catch::Contains("refused the credentials"));

  Config anonymous = test::config_for(server);
  CHECK(connect_error(anonymous) == errc::auth_failed);
}

TEST_CASE("token: the right one connects, a wrong one is refused clearly", "[security]") {
  LocalServer server(LocalServerOptions{.config_text = "authorization { token: t0ken-abc }\n"});
  Config c = test::config_for(server);
  c.token = "t0ken-abc";
  CHECK(connect_error(c) == errc{});
  c.token = "other";
  std::string message;
  CHECK(connect_error(c, &message) == errc::auth_failed);
  CHECK_THAT(message, Catch::Contains(server.url()));
}

TEST_CASE("TLS: a server certificate from the configured CA is accepted, unknown CA and wrong host are refused",
          "[security][tls]") {
  const TlsMaterial& pki = tls_material();
  const test::TempDir& tmp = pki.tmp;
  const Pki& good = pki.good;
  const Pki& other = pki.other;
  const Pki& wrong_host = pki.wrong_host;

  SECTION("server verified, client certificate presented") {
    LocalServer server(LocalServerOptions{.config_text = good.server_block(true)});
    Config c = test::config_for(server);
    c.servers = {"tls://localhost:" + std::to_string(server.port())};
    c.tls_ca = good.ca;
    c.tls_cert = good.client_cert;
    c.tls_key = good.client_key;
    std::string message;
    CHECK(connect_error(c, &message) == errc{});
    INFO(message);
  }
  SECTION("a server certificate signed by an unknown CA is refused") {
    LocalServer server(LocalServerOptions{.config_text = other.server_block(false)});
    Config c = test::config_for(server);
    c.servers = {"tls://localhost:" + std::to_string(server.port())};
    c.tls_ca = good.ca;
    std::string message;
    CHECK(connect_error(c, &message) == errc::tls_error);
    CHECK_THAT(message, Catch::Contains("TLS"));
  }
  SECTION("a server certificate for another host name is refused") {
    LocalServer server(LocalServerOptions{.config_text = wrong_host.server_block(false)});
    Config c = test::config_for(server);
    c.servers = {"tls://localhost:" + std::to_string(server.port())};
    c.tls_ca = wrong_host.ca;
    CHECK(connect_error(c) == errc::tls_error);
  }
  SECTION("a client without a certificate is refused when the server requires one") {
    LocalServer server(LocalServerOptions{.config_text = good.server_block(true)});
    Config c = test::config_for(server);
    c.servers = {"tls://localhost:" + std::to_string(server.port())};
    c.tls_ca = good.ca;
    std::string message;
    const errc kind = connect_error(c, &message);
    INFO("kind " << static_cast<int>(kind) << ": " << message);
    CHECK((kind == errc::tls_error || kind == errc::connection_failed));
  }
  SECTION("a missing CA file is named in the error") {
    LocalServer server(LocalServerOptions{.config_text = good.server_block(false)});
    Config c = test::config_for(server);
    c.tls_ca = (tmp.path / "missing-ca.pem").string();
    std::string message;
    CHECK(connect_error(c, &message) != errc{});
    CHECK_THAT(message, Catch::Contains("missing-ca.pem"));
  }
}
