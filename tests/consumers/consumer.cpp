// A program that uses omniq the way an application does, built against an installed omniq
// (find_package, pkg-config) or omniq's source tree (add_subdirectory). It starts a local
// nats-server, connects, makes the result bucket exist and checks what the server reports.
#include <iostream>

#include <omniq/omniq.hpp>

int main() {
  try {
    omniq::LocalServer server;
    omniq::Config config;
    config.servers = {server.url()};
    omniq::NatsBackend backend(config);
    omniq::ConnectionScope scope(backend);
    const omniq::BucketReport bucket = backend.sync_result_store().info();
    const omniq::Task task{.func = "consumer.check", .args = {1, 2}};
    const omniq::Task back = omniq::decode_task(omniq::encode(task));
    std::cout << "omniq " << omniq::version << ": bucket " << bucket.name << " ttl "
              << std::chrono::duration_cast<std::chrono::hours>(bucket.ttl).count() << " h, task " << back.id << "\n";
    return bucket.name == "omniq_results" && back.id == task.id ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "consumer failed: " << e.what() << "\n";
    return 1;
  }
}
