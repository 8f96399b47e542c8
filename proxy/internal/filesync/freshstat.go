package filesync

import (
	"github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// freshMask is the part of a modification time (nanoseconds) a fresh stat
// changes: low bits, so that the varint, and with it the message, keeps its
// length, and the relay can forward the replacement in the frames that
// carried the original.
const freshMask = 1<<20 - 1

// WithFreshStats makes the Reader offer Event.Replace for the STAT of each
// wanted regular file, with its modification time changed by nonce (use a
// new random one for each transfer). dockerd's receiver asks only for the
// files whose size and time differ from those it kept of an earlier
// transfer with the same shared key; the Dockerfile frontend of BuildKit 0.8
// (Engine 20.10) keeps that default for the Dockerfile, where today's asks
// for every file (DiffNone). Without a fresh stat, rebuilding an
// unchanged Dockerfile leaves it Missing, and the proxy cannot judge it.
func WithFreshStats(nonce uint64) Option {
	return func(r *Reader) {
		r.fresh = int64(nonce & freshMask)
		if r.fresh == 0 {
			r.fresh = 1
		}
	}
}

// freshStat is the replacement for a STAT packet that just stated a wanted
// regular file, or nil: no fresh stats asked, not such a file, or a time
// whose new value would change the message's length (a time of zero is
// not even in the message).
func (r *Reader) freshStat(p *types.Packet, size int) []byte {
	if r.fresh == 0 {
		return nil
	}
	e := r.byID[len(r.byID)-1]
	if e.kind != regular || len(e.names) == 0 || p.Stat.ModTime == 0 {
		return nil
	}
	// Marshaled anew from what the Reader decoded, so dockerd reads exactly
	// the fields the Reader read, whatever else the client's bytes held.
	fresh := proto.Clone(p).(*types.Packet)
	fresh.Stat.ModTime ^= r.fresh
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fresh)
	if err != nil || len(b) != size {
		return nil
	}
	return b
}
