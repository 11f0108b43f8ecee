#pragma once

// River's Redis part: the Redis Streams provider, and the pipelined connection and Redis
// Cluster client beneath it.

#include <river/redis/cluster.hpp>
#include <river/redis/config.hpp>
#include <river/redis/connection.hpp>
#include <river/redis/error.hpp>
#include <river/redis/provider.hpp>
