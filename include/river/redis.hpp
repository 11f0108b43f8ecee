#pragma once

// River's Redis part: the Redis Streams provider and the pipelined connection beneath it.

#include <river/redis/config.hpp>
#include <river/redis/connection.hpp>
#include <river/redis/error.hpp>
#include <river/redis/provider.hpp>
