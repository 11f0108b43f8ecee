#include <river/log.hpp>

#include <catch2/catch.hpp>

TEST_CASE("log records are one logfmt line: plain words bare, the rest quoted and escaped", "[core]") {
  river::log_record r;
  r.event = "run_failed";
  r.stream = "chat";
  r.run_id = "r-1";
  r.storage_id = "default";
  r.outcome = "fatal_error";
  r.cause = "the runner threw: \"boom\"\nat line 2\t\\ end\x01";
  CHECK(river::to_logfmt(r) ==
        "river event=run_failed stream=chat run=r-1 storage=default outcome=fatal_error "
        "cause=\"the runner threw: \\\"boom\\\"\\nat line 2\\t\\\\ end\\u0001\"");
  // Empty fields are left out; a value with `=` is quoted.
  river::log_record bare;
  bare.event = "storage_down";
  bare.cause = "a=b";
  CHECK(river::to_logfmt(bare) == "river event=storage_down cause=\"a=b\"");
}
