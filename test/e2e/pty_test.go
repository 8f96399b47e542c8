package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// crlf is a line end as a terminal shows it: the container's terminal and
// the client's each turn "\n" into "\r\n".
var crlf = regexp.MustCompile("\r+\n")

// ptyProc is a command whose stdin, stdout and stderr are the slave side of
// a pseudo-terminal, as when a person types `docker run -it` in a terminal.
type ptyProc struct {
	cmd    *exec.Cmd
	master *os.File

	mu   sync.Mutex
	out  bytes.Buffer
	read chan struct{} // closed when the master reads EOF/EIO
	done chan struct{} // closed when the command exited
	err  error
}

// openPTY opens a master and its slave, 24x80, with only the standard library.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	var n uint32
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		var unlock int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ioctlErr = fmt.Errorf("TIOCSPTLCK: %w", e)
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioctlErr = fmt.Errorf("TIOCGPTN: %w", e)
		}
	})
	if err = errors.Join(err, ioctlErr); err != nil {
		master.Close()
		return nil, nil, err
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	ws := struct{ row, col, x, y uint16 }{24, 80, 0, 0}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, slave.Fd(), syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws))); e != 0 {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("TIOCSWINSZ: %w", e)
	}
	return master, slave, nil
}

// startPTY starts cmd on a new pseudo-terminal as its controlling terminal.
func startPTY(cmd *exec.Cmd) (*ptyProc, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		return nil, err
	}
	slave.Close()
	p := &ptyProc{cmd: cmd, master: master, read: make(chan struct{}), done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil { // EIO once every slave fd is closed
				close(p.read)
				return
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Output is everything the terminal showed so far, with \r\n as \n.
func (p *ptyProc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return crlf.ReplaceAllString(p.out.String(), "\n")
}

// Expect waits until the terminal shows s.
func (p *ptyProc) Expect(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			return fmt.Errorf("terminal did not show %q within %v; it shows %q", s, timeout, p.Output())
		}
		select {
		case <-p.read:
			if !strings.Contains(p.Output(), s) {
				return fmt.Errorf("terminal closed without showing %q; it shows %q", s, p.Output())
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Type writes what a person would type.
func (p *ptyProc) Type(s string) error {
	_, err := io.WriteString(p.master, s)
	return err
}

// Wait waits for the command to exit and for its last output, and returns
// its exit code.
func (p *ptyProc) Wait(timeout time.Duration) (int, error) {
	defer p.master.Close()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1, fmt.Errorf("did not exit within %v; terminal shows %q", timeout, p.Output())
	}
	select { // the last bytes may still be in the terminal
	case <-p.read:
	case <-time.After(2 * time.Second):
	}
	return exitCode(p.err), nil
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		return -1
	}
	return -1
}
