// Package testbed runs the real things dockgate stands between — a private
// dockerd, a private registry and a freshly built dockgate — in a temp dir,
// and tears them down without leaving processes, mounts or sockets behind.
//
// A test package uses one shared bed per test binary:
//
//	func TestMain(m *testing.M) { os.Exit(testbed.Main(m, testbed.Options{LeakCheck: true})) }
//
//	func TestSomething(t *testing.T) {
//		env := testbed.Shared(t) // skips (or fails under DOCKGATE_E2E=required) without dockerd
//		... env.ProxyHost, env.DirectHost() ...
//	}
//
// Main starts the bed, then runs the tests in a child copy of the test binary,
// so that a panicking or timed-out test cannot skip the teardown: the parent
// outlives the child, checks dockgate for leaked fds and goroutines, and stops
// everything. Programs that are not tests (the bench, the demo) use Setup and
// Env.Close, or the Start* functions one by one.
//
// Environment:
//
//	DOCKGATE_E2E=required   a missing prerequisite fails instead of skipping
//	DOCKGATE_E2E_DIRECT=1   no dockgate: the "proxy" host is dockerd itself
//	                        (to tell a test's own flakiness from a dockgate bug)
//	DOCKGATE_E2E_KEEP=1     leave the temp dir (logs, audit log) in place
package testbed
