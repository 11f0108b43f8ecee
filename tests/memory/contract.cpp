// The in-memory provider passes the provider contract.

#include <river/memory/provider.hpp>

#include "core/provider_contract.hpp"

namespace {

// Instances of one service in one process share the process's provider.
struct memory_fixture {
  std::shared_ptr<river::provider> provider;
  std::shared_ptr<river::provider> make(const river::executor&) {
    if (!provider) provider = std::make_shared<river::memory::provider>();
    return provider;
  }
};

}  // namespace

RIVER_PROVIDER_CONTRACT(memory_fixture, "memory provider")
