// The Redis provider passes the provider contract, with instances sharing one redis-server.

#include <river/redis/provider.hpp>

#include "core/provider_contract.hpp"
#include "redis/provider_support.hpp"

namespace {

struct redis_fixture {
  std::optional<river::test::redis_server> server;
  std::shared_ptr<river::provider> make(const river::executor& ex) {
    if (!server) server.emplace();
    return std::make_shared<river::redis::provider>(ex, river::test::test_config(*server));
  }
};

}  // namespace

RIVER_PROVIDER_CONTRACT(redis_fixture, "redis provider")
