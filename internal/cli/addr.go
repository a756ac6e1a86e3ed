package cli

import (
	"fmt"
	"net"
	"strconv"
)

// CheckListenAddr checks that addr, the value of flag, is a host:port a process can listen
// on: a port from 0 (any free one) to 65535, and a host that is empty, an IP or a name.
func CheckListenAddr(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port (%v)", flag, addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: %q: the port must be a number from 0 to 65535", flag, addr)
	}
	_ = host // a name is resolved by the listen itself, which names the flag on failure
	return nil
}

// IsWildcard reports whether the host of addr listens on every interface ("", 0.0.0.0, ::):
// an address others cannot be told to reach.
func IsWildcard(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// CheckAdvertised checks that addr, the value of flag, is a host:port other processes can be
// told to reach: a specific host and a port other than 0.
func CheckAdvertised(flag, addr string) error {
	if err := CheckListenAddr(flag, addr); err != nil {
		return err
	}
	if IsWildcard(addr) {
		return fmt.Errorf("%s: %q listens on every interface, which no other host can dial", flag, addr)
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return fmt.Errorf("%s: %q has port 0, which no other host can dial", flag, addr)
	}
	return nil
}
