// Package policy is the language of dockgate's policy files. Its glob,
// Pattern, is the one thing every column but the subject is matched with,
// so it lives here and nowhere else.
package policy
