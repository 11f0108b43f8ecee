#pragma once

// The names of a run's keys and channels (docs/protocol.md section 7). The run's stream keeps the
// TypeScript provider's name, `stream-STORAGEID-RUNID`; every other name carries that name as a
// hash tag, `{stream-STORAGEID-RUNID}`, so on Redis Cluster all of them hash to the stream's slot:
// each script stays single-slot and each notice lands on the node that holds the run.

#include <string>
#include <string_view>

namespace river::redis::detail {

struct run_keys {
  std::string stream;   ///< the run's log: a stream of `item` entries, closed by `end`
  std::string lease;    ///< the owner's lease: its instance id, with an expiry it keeps renewing
  std::string cancel;   ///< set when a cancel was requested, for an owner that missed the message
  std::string suspect;  ///< when a check first found the lease missing (Redis's clock)
  std::string notices;  ///< channel: the run's log has new entries (payload: the newest id)
  std::string control;  ///< channel: requests to the run's owner (`cancel`)
  std::string readers;  ///< hash: instances with readers of the run, each with its expiry

  static run_keys of(std::string_view storage_id, std::string_view run_id) {
    run_keys k;
    k.stream = "stream-";
    k.stream.append(storage_id).append("-").append(run_id);
    k.lease = tagged("river-lease:", k.stream);
    k.cancel = tagged("river-cancel:", k.stream);
    k.suspect = tagged("river-suspect:", k.stream);
    k.notices = tagged("river-notice:", k.stream);
    k.control = tagged("river-control:", k.stream);
    k.readers = readers_of(k.stream);
    return k;
  }

  /// The readers hash of the run whose stream key this is.
  static std::string readers_of(std::string_view stream) { return tagged("river-readers:", stream); }

 private:
  static std::string tagged(std::string_view prefix, std::string_view stream) {
    std::string out(prefix);
    out.append("{").append(stream).append("}");
    return out;
  }
};

}  // namespace river::redis::detail
