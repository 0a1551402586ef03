//go:build unix

package oneroute

import (
	"errors"
	"net"
	"syscall"
)

// peekEmpty reports whether c's socket is open with nothing to read,
// without blocking and without consuming anything.
func peekEmpty(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var perr error
	var buf [1]byte
	if err := raw.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait: this is a check
	}); err != nil {
		return false
	}
	// No error: 0 bytes (closed by the peer) or unexpected bytes.
	return errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EWOULDBLOCK)
}
