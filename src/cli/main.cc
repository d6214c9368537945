// The single acceptd binary: subcommand wiring only.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/api_keys_config.h"
#include "cli/client_commands.h"
#include "cli/serve.h"
#include "cli/server_config.h"
#include "cli/worker_command.h"
#include "store/job_store.h"

int main(int argc, char** argv) {
  CLI::App app{"acceptd: a server for the Asynchronous Request-Reply pattern"};
  app.require_subcommand(1);

  acceptd::ServerConfig config;
  std::string config_path, listen, store, log_dir, log_level;
  auto* serve = app.add_subcommand("serve", "Run the HTTP server and its workers");
  serve->add_option("--config", config_path, "TOML config file (queues, limits, logging)")
      ->check(CLI::ExistingFile);
  serve->add_option("--listen", listen, "Address to listen on, HOST:PORT (default 127.0.0.1:8000)");
  serve->add_option("--store", store, "Job store URL (default sqlite:./acceptd-data/acceptd.db)");
  serve->add_option("--log-dir", log_dir,
                    "Also write rotating log files (acceptd.log) to this directory");
  serve->add_option("--log-level", log_level,
                    "trace, debug, info, warn, error, critical or off (default info)");
  bool unsafe_durability = false;
  serve->add_flag("--unsafe-durability", unsafe_durability,
                  "Run even if the database server does not make commits durable (PostgreSQL "
                  "fsync = off or synchronous_commit = off): a crash may lose acknowledged jobs");
  std::string migrate_store;
  auto* migrate = app.add_subcommand(
      "migrate", "Apply the store's schema (create or upgrade it), print its version, and exit");
  migrate->add_option("--store", migrate_store, "Job store URL, e.g. postgres://user@host/db")
      ->required();
  std::string key_name = acceptd::kDefaultKeygenName;
  std::string key_scopes = acceptd::kDefaultKeygenScopes;
  std::string key_tenant;
  auto* keygen = app.add_subcommand(
      "keygen", "Print a new random API key and the [[api_keys]] lines for the server config");
  keygen->add_option("--name", key_name, "The key's name, shown in logs (default client)");
  keygen->add_option("--scopes", key_scopes,
                     "Comma-separated: submit, read, cancel, worker, admin "
                     "(default submit,read,cancel)");
  keygen->add_option("--tenant", key_tenant, "The tenant whose jobs the key sees (default none)");
  acceptd::cli::ClientCommands client_commands(app);
  acceptd::cli::WorkerCommand worker_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "acceptd: " << e.what() << "\n";
    return 2;
  }

  if (serve->parsed()) {
    if (!config_path.empty()) {
      if (auto st = acceptd::LoadConfigFile(config_path, config); !st) {
        std::cerr << "acceptd: " << st.error().detail << "\n";
        return 2;
      }
    }
    if (!listen.empty()) config.listen = listen;
    if (!store.empty()) config.store = store;
    if (!log_dir.empty()) config.log.dir = log_dir;
    if (!log_level.empty()) config.log.level = log_level;
    if (unsafe_durability) config.unsafe_durability = true;
    if (auto l = acceptd::ParseListen(config.listen); !l) {
      std::cerr << "acceptd: --listen: " << l.error().detail << "\n";
      return 2;
    }
    return acceptd::RunServe(config);
  }
  if (migrate->parsed()) {
    auto version = acceptd::MigrateStore(migrate_store);
    if (!version) {
      std::cerr << "acceptd: cannot migrate store " << acceptd::RedactStoreUrl(migrate_store)
                << ": " << version.error().message << "\n";
      return 2;
    }
    std::cout << "store " << acceptd::RedactStoreUrl(migrate_store) << ": schema version "
              << *version << "\n";
    return 0;
  }
  if (keygen->parsed()) {
    return acceptd::RunKeygen(key_name, key_scopes, key_tenant, std::cout, std::cerr);
  }
  if (auto code = client_commands.Run()) return *code;
  if (auto code = worker_command.Run()) return *code;
  return 2;
}
