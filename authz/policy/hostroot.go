package policy

// HostRoot says what allowing f would give away when that is root on the
// host, or the confinement that keeps a container's root from it, as a
// refusal's advice says it ("is root on the host (…)"); "" when it is
// not. Tools that write rows (dockgate policy suggest) ask it so that
// such a row is never written without saying so.
func HostRoot(f Fact) string { return hostRoot(f) }
