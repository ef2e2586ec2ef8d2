// Command circlectl is a circle member's device on the command line: it
// keeps its own copy of the circle's documents in a home directory, works
// offline and syncs with the circle server (circled) when it can reach it.
//
//	circlectl [--home DIR] join URL INVITE [--name NAME] [--device NAME]
//	circlectl join INVITE_URL              (the URL "invite" prints)
//	circlectl log 2h "fixed the bike" [--kind hours] [--to MEMBER] [--at TIME]
//	circlectl sync
//	circlectl ledger [--mine] [--member MEMBER]
//	circlectl balances
//	circlectl invite [--device] [--expires 72h]
//	circlectl status
//
// log, ledger and status need no network; join, sync, balances and invite
// talk to the server. The home directory defaults to $CIRCLECTL_HOME, else
// $XDG_CONFIG_HOME/circlectl, else ~/.config/circlectl; its layout is
// described in package mobile-api/client.
//
// Exit status: 0 on success, 1 when the command failed (one line on
// stderr), 2 for a wrong command line (with the usage on stderr).
package main
