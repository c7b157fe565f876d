package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"tokenledger/accounts"
	"tokenledger/events"
)

// maxPasswordLine bounds what passwd reads from stdin.
const maxPasswordLine = 4 << 10

// passwd adds an account to the accounts file of `serve --accounts`, or
// changes its password, which must have at least accounts.MinPassword
// characters. The password comes from stdin, never from an argument, so it
// shows in no process list or shell history. A running node ends the
// account's panel sessions when it sees the new password.
func (e *cli) passwd(args []string) error {
	fs := e.flags("passwd")
	path := fs.String("accounts", "", "htpasswd file to change")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: tokenledger passwd --accounts FILE ACCOUNT   (the password is read from stdin)\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args, 1); err != nil {
		return err
	}
	if *path == "" {
		return usageErrorf("passwd: --accounts FILE is required")
	}
	if fs.NArg() != 1 {
		return usageErrorf("passwd: name one ACCOUNT")
	}
	account := fs.Arg(0)
	if err := events.CheckAccount(account); err != nil {
		return checkInput(err)
	}
	password, err := readPassword(e.stdin)
	if err != nil {
		return err
	}
	// SetPassword refuses a short password before it writes anything; a
	// shorter one already in the file keeps working, so nobody is locked out.
	if err := accounts.SetPassword(*path, account, password); err != nil {
		if events.ErrorCode(err) == events.Invalid {
			return usageErrorf("passwd: %s", events.ErrorMessage(err))
		}
		return err
	}
	fmt.Fprintf(e.stderr, "tokenledger: password of %s set in %s\n", account, *path)
	return nil
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordLine)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	if err == io.EOF && len(line) >= maxPasswordLine {
		return "", usageErrorf("passwd: the password line is too long")
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return "", usageErrorf("passwd: give the password on stdin, e.g. printf '%%s\\n' \"$PASSWORD\" | tokenledger passwd --accounts FILE ACCOUNT")
	}
	return password, nil
}
