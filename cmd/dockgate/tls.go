package main

import (
	"errors"
	"net"
	"strings"

	"github.com/dockgate/dockgate/proxy"
)

// listenTLS opens a tcp:// listener. It needs all three TLS flags: a TCP
// listener without verified client certificates would let anyone who can
// reach the port in as an unidentified caller.
func listenTLS(o *serveOptions, address string) (net.Listener, error) {
	if o.tlsCert == "" || o.tlsKey == "" || o.tlsClientCA == "" {
		return nil, errors.New("a tcp:// listener needs --tls-cert, --tls-key and --tls-client-ca (client certificates are how TCP callers are identified)")
	}
	cfg, err := proxy.TLSConfig(o.tlsCert, o.tlsKey, o.tlsClientCA)
	if err != nil {
		return nil, err
	}
	return proxy.ListenTLS(address, cfg)
}

// checkTLSFlags refuses TLS flags that no listener would use: an operator
// who gave them expects a TLS listener, and none would be there.
func checkTLSFlags(o *serveOptions) error {
	if o.tlsCert == "" && o.tlsKey == "" && o.tlsClientCA == "" {
		return nil
	}
	for _, l := range o.listen {
		if strings.HasPrefix(l, "tcp://") {
			return nil
		}
	}
	return errors.New("--tls-cert, --tls-key and --tls-client-ca are for tcp:// listeners, and no --listen tcp://HOST:PORT is given")
}
