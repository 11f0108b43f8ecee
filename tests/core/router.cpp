#include <river/router.hpp>

#include <catch2/catch.hpp>

using json = nlohmann::json;

namespace {

river::stream<json, json> noop_stream() {
  return river::stream<json, json>().runner([](river::run_context<json, json>&) -> river::asio::awaitable<void> {
    co_return;
  });
}

}  // namespace

TEST_CASE("a router finds its streams by name") {
  river::router r;
  r.add("a", noop_stream()).add("b", noop_stream());
  CHECK(r.size() == 2);
  CHECK(r.contains("a"));
  CHECK(r.contains("b"));
  CHECK_FALSE(r.contains("c"));
  CHECK(r.provider_of("c") == nullptr);
  CHECK(r.names() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a duplicate stream name is an error") {
  river::router r;
  r.add("chat", noop_stream());
  CHECK_THROWS_AS(r.add("chat", noop_stream()), std::invalid_argument);
  CHECK_THROWS_WITH(r.add("chat", noop_stream()), Catch::Contains("'chat' already exists"));
  CHECK(r.size() == 1);
}

TEST_CASE("an empty name or a stream without runner is an error") {
  river::router r;
  CHECK_THROWS_AS(r.add("", noop_stream()), std::invalid_argument);
  CHECK_THROWS_WITH(r.add("x", river::stream<json, json>()), Catch::Contains("has no runner"));
  CHECK(r.size() == 0);
}

TEST_CASE("a stream name whose resumption tokens would be too long to decode is an error") {
  river::router r;
  // Base64 takes 4 bytes for 3: a name of 3000 bytes makes tokens of over 4096.
  CHECK_THROWS_WITH(r.add(std::string(3000, 'n'), noop_stream()), Catch::Contains("is too long"));
  r.add(std::string(2500, 'n'), noop_stream());
  CHECK(r.size() == 1);
}

TEST_CASE("streams without a provider share the router's in-memory provider") {
  river::router r;
  auto own = std::make_shared<river::memory::provider>();
  r.add("a", noop_stream()).add("b", noop_stream()).add("c", noop_stream().provider(own));
  CHECK(r.provider_of("a") == r.provider_of("b"));
  CHECK(r.provider_of("a")->id() == "memory");
  CHECK(r.provider_of("c") == own);
  river::router copy = r;
  CHECK(copy.provider_of("a") == r.provider_of("a"));
  CHECK(r.providers().size() == 2);
}

TEST_CASE("the router's in-memory provider takes the settings it is given") {
  river::memory::config small;
  small.storage_id = "small";
  small.max_runs = 3;
  river::router r(small);
  r.add("a", noop_stream());
  CHECK(r.provider_of("a")->storage_id() == "small");
}
