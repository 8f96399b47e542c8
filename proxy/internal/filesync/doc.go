// Package filesync reads the files dockgate must judge out of a BuildKit
// filesync stream (moby.filesync.v1.FileSync/DiffCopy) as the proxy relays
// it, message by message, so that a file is judged before the message that
// completes it reaches dockerd.
//
// The protocol is fsutil's (github.com/tonistiigi/fsutil send.go and
// receive.go): the sender (the docker client) lists the tree as STAT
// packets whose index is the file's ID, an empty STAT ends the listing; the
// receiver (dockerd) asks for regular files by REQ{ID}; the sender answers
// DATA{ID, Data} chunks, several files interleaved (it sends with four
// workers), and an empty DATA{ID} ends a file; the receiver's FIN is
// answered by the sender's FIN; either side may give up with ERR. What
// dockerd will use as a path is what its receiver makes of the packets, so
// the Reader counts IDs, follows symbolic and hard links and refuses what
// the receiver would take differently from it.
package filesync
