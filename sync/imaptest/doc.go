// Package imaptest starts real IMAP servers for tests and seeds and inspects
// them: Dovecot in a temporary directory (the CONDSTORE/QRESYNC reference
// server, with its advertised capabilities narrowed per test mode) and
// go-imap's in-memory server (no CONDSTORE; optionally behind implicit TLS).
// It also owns the deterministic mail corpus the scenario tests fill servers
// with, and Proxy, which sits between the code under test and a server to
// cut, stall or slow down the connection.
//
// It is for tests only: nothing outside _test.go files may import it
// (gmailserve, below it, imports it but is not imported: a program that
// serves the Gmail emulation to the bench, which runs it as a child). It
// talks IMAP through go-imap's client for seeding and inspection, and hands
// raw connections to the code under test; it must not import satchel's
// engine, adapters or CLI, which are the code it exists to test.
package imaptest
