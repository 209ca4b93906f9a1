# make install [DESTDIR=...] [PREFIX=/usr/local]: builds the release binary and installs it
# with its manual page, systemd units, logrotate snippet and example instance files.
# make deb: a Debian package of the same, in .build/deb.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= /etc/systemd/system
SYSCONFDIR ?= /etc
BINARY ?= .build/release/tcp-fallback
UNITS = tcp-fallback.service tcp-fallback@.service tcp-fallback.socket tcp-fallback-config.service

.PHONY: all build install install-files uninstall test deb

all: build

build:
	Scripts/build-release.sh

install: build install-files

# Installs what is already built ($(BINARY)); the units point at $(BINDIR).
install-files:
	install -D -m 0755 $(BINARY) $(DESTDIR)$(BINDIR)/tcp-fallback
	install -D -m 0644 man/tcp-fallback.1 $(DESTDIR)$(MANDIR)/man1/tcp-fallback.1
	install -d $(DESTDIR)$(UNITDIR)
	for unit in $(UNITS); do \
	  sed 's#/usr/local/bin/tcp-fallback#$(BINDIR)/tcp-fallback#' contrib/$$unit > $(DESTDIR)$(UNITDIR)/$$unit; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit; \
	done
	install -D -m 0644 contrib/tcp-fallback.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/tcp-fallback
	install -D -m 0644 contrib/tcp-fallback-mysql.default $(DESTDIR)$(SYSCONFDIR)/default/tcp-fallback-mysql.example
	install -D -m 0644 contrib/tcp-fallback-mysql-writer.default $(DESTDIR)$(SYSCONFDIR)/default/tcp-fallback-mysql-writer.example
	install -D -m 0644 contrib/tcp-fallback-mysql-reader.default $(DESTDIR)$(SYSCONFDIR)/default/tcp-fallback-mysql-reader.example
	install -D -m 0644 contrib/tcp-fallback.yaml $(DESTDIR)$(SYSCONFDIR)/tcp-fallback.yaml.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tcp-fallback $(DESTDIR)$(MANDIR)/man1/tcp-fallback.1
	for unit in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$unit; done
	rm -f $(DESTDIR)$(SYSCONFDIR)/logrotate.d/tcp-fallback $(DESTDIR)$(SYSCONFDIR)/default/tcp-fallback-mysql.example \
	  $(DESTDIR)$(SYSCONFDIR)/default/tcp-fallback-mysql-writer.example $(DESTDIR)$(SYSCONFDIR)/default/tcp-fallback-mysql-reader.example \
	  $(DESTDIR)$(SYSCONFDIR)/tcp-fallback.yaml.example

test:
	Scripts/test.sh

# A Debian package in .build/deb (Scripts/build-deb.sh).
deb:
	Scripts/build-deb.sh
