#pragma once

// River: durable, resumable streams for C++20 coroutines. The core and the in-memory provider.

#include <river/caller.hpp>
#include <river/disconnect_policy.hpp>
#include <river/errc.hpp>
#include <river/error.hpp>
#include <river/event.hpp>
#include <river/event_reader.hpp>
#include <river/invalid_field.hpp>
#include <river/json_text.hpp>
#include <river/read_from.hpp>
#include <river/memory/provider.hpp>
#include <river/provider.hpp>
#include <river/request_metadata.hpp>
#include <river/resume_token.hpp>
#include <river/router.hpp>
#include <river/run_context.hpp>
#include <river/run_watch.hpp>
#include <river/stream.hpp>
#include <river/version.hpp>
