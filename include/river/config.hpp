#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include <river/version.hpp>

namespace river {

/// River's spelling of Boost.Asio, used throughout its API.
namespace asio = boost::asio;

/// Failures are reported as Boost error codes, first in every completion.
using error_code = boost::system::error_code;

/// The executor type of River's I/O objects unless a user picks another.
using executor = asio::any_io_executor;

}  // namespace river
