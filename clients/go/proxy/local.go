package proxy

import (
	"crypto/subtle"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// local answers the commands the proxy serves itself.
func (s *session) local(r *request, c *command, args [][]byte) {
	switch c.name {
	case "ping":
		switch len(args) {
		case 1:
			r.finish(replyPong)
		case 2:
			r.finish(replyBulk(args[1]))
		default:
			s.fail(r, "ERR wrong number of arguments for 'ping' command")
		}
	case "echo":
		if len(args) != 2 {
			s.fail(r, "ERR wrong number of arguments for 'echo' command")
			return
		}
		r.finish(replyBulk(args[1]))
	case "quit":
		r.close = true
		r.finish(replyOK)
	case "select":
		if len(args) != 2 {
			s.fail(r, "ERR wrong number of arguments for 'select' command")
			return
		}
		if string(args[1]) != "0" {
			s.fail(r, "ERR SELECT: the proxy serves database 0 only")
			return
		}
		r.finish(replyOK)
	case "auth":
		var pw []byte
		switch len(args) {
		case 2:
			pw = args[1]
		case 3:
			if string(args[1]) != "default" {
				s.fail(r, "WRONGPASS invalid username-password pair or user is disabled.")
				return
			}
			pw = args[2]
		default:
			s.fail(r, "ERR wrong number of arguments for 'auth' command")
			return
		}
		if msg := s.auth(pw); msg != "" {
			s.fail(r, msg)
			return
		}
		r.finish(replyOK)
	case "hello":
		s.hello(r, args)
	case "client":
		s.client(r, args)
	case "info":
		r.finish(replyBulk([]byte(s.p.info())))
	default:
		s.fail(r, "ERR "+c.name+" is not served by the proxy")
	}
}

func (s *session) auth(pw []byte) string {
	if s.p.cfg.SessionAuth == "" {
		return "ERR AUTH <password> called without any password configured for the proxy (--session-auth)"
	}
	if subtle.ConstantTimeCompare(pw, []byte(s.p.cfg.SessionAuth)) != 1 {
		s.authed = false
		return "WRONGPASS invalid username-password pair or user is disabled."
	}
	s.authed = true
	return ""
}

func (s *session) hello(r *request, args [][]byte) {
	i := 1
	if len(args) > 1 {
		if string(args[1]) != "2" {
			if string(args[1]) == "3" {
				s.fail(r, "NOPROTO this proxy speaks RESP2 only (HELLO 3 refused; use HELLO 2 or no HELLO)")
			} else {
				s.fail(r, "NOPROTO unsupported protocol version "+printable(args[1]))
			}
			return
		}
		i = 2
	}
	for i < len(args) {
		switch strings.ToUpper(string(args[i])) {
		case "AUTH":
			if i+2 >= len(args) {
				s.fail(r, "ERR syntax error in HELLO option AUTH")
				return
			}
			if msg := s.auth(args[i+2]); msg != "" {
				s.fail(r, msg)
				return
			}
			i += 3
		case "SETNAME":
			if i+1 >= len(args) {
				s.fail(r, "ERR syntax error in HELLO option SETNAME")
				return
			}
			s.name = append([]byte(nil), args[i+1]...)
			i += 2
		default:
			s.fail(r, "ERR syntax error in HELLO option '"+printable(args[i])+"'")
			return
		}
	}
	if !s.authed {
		s.fail(r, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	out := []byte("*14\r\n")
	for _, kv := range [][2][]byte{
		{[]byte("server"), []byte("topom-proxy")},
		{[]byte("version"), []byte(s.p.cfg.Version)},
	} {
		out = append(out, replyBulk(kv[0])...)
		out = append(out, replyBulk(kv[1])...)
	}
	out = append(out, replyBulk([]byte("proto"))...)
	out = append(out, replyInt(2)...)
	out = append(out, replyBulk([]byte("id"))...)
	out = append(out, replyInt(int64(s.id))...)
	out = append(out, replyBulk([]byte("mode"))...)
	out = append(out, replyBulk([]byte("proxy"))...)
	out = append(out, replyBulk([]byte("role"))...)
	out = append(out, replyBulk([]byte("master"))...)
	out = append(out, replyBulk([]byte("modules"))...)
	out = append(out, []byte("*0\r\n")...)
	r.finish(out)
}

func (s *session) client(r *request, args [][]byte) {
	if len(args) < 2 {
		s.fail(r, "ERR wrong number of arguments for 'client' command")
		return
	}
	switch strings.ToUpper(string(args[1])) {
	case "SETNAME":
		if len(args) != 3 {
			s.fail(r, "ERR wrong number of arguments for 'client|setname' command")
			return
		}
		for _, b := range args[2] {
			if b <= ' ' || b > '~' {
				s.fail(r, "ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
		}
		s.name = append([]byte(nil), args[2]...)
		r.finish(replyOK)
	case "GETNAME":
		r.finish(replyBulk(s.name))
	case "ID":
		r.finish(replyInt(int64(s.id)))
	default:
		s.fail(r, "ERR CLIENT "+strings.ToUpper(printable(args[1]))+" is not supported by the proxy: only CLIENT SETNAME, GETNAME and ID are")
	}
}

// info is the proxy's own INFO text.
func (p *Proxy) info() string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Server\r\nproxy:topom-proxy\r\nversion:%s\r\nprocess_id:%d\r\nhostname:%s\r\ngo_version:%s\r\nuptime_in_seconds:%d\r\n",
		p.cfg.Version, os.Getpid(), host, runtime.Version(), int(time.Since(p.started).Seconds()))
	fmt.Fprintf(&b, "\r\n# Clients\r\nconnected_clients:%d\r\ntotal_connections_received:%d\r\n",
		p.stats.sessionsAlive.Load(), p.stats.sessionsTotal.Load())
	state := "serving"
	switch {
	case p.router.fenced.Load():
		state = "fenced"
	case !p.router.synced.Load():
		state = "syncing"
	}
	fmt.Fprintf(&b, "\r\n# Topom\r\nstate:%s\r\napplied_revision:%d\r\nbackend_connections:%d\r\n",
		state, p.router.revision.Load(), p.backendConns.Load())
	fmt.Fprintf(&b, "\r\n# Stats\r\ntotal_commands_processed:%d\r\ntotal_commands_failed:%d\r\n",
		p.stats.ops.Load(), p.stats.fails.Load())
	return b.String()
}
