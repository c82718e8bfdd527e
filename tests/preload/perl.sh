#!/bin/sh
# perl.sh -- a hash- and string-heavy perl script; outputs must match.
. "$(dirname "$0")/lib.sh"
cat >"$W/w.pl" <<'PL'
use strict; use warnings;
my %h; my @a;
for my $i (0 .. 300000) { $h{"k$i" . ("y" x ($i % 13))} = [$i, "v" . ($i * 3)]; }
for my $i (0 .. 300000) { delete $h{"k$i" . ("y" x ($i % 13))} if $i % 4 == 0; }
for my $i (0 .. 200000) { push @a, join(",", map { $_ * $i % 97 } 1 .. 5); }
my @s = sort @a; my $t = join("", @s[0 .. 999]);
(my $u = $t) =~ s/(\d+)/<$1>/g;
my %c; $c{$_}++ for split /,/, join(",", @a);
my $sum = 0; $sum += $_->[0] for values %h;
printf "perl: %d %d %d %s %s\n", scalar(keys %h), $sum, length($u), join(" ", map { "$_=$c{$_}" } (sort { $a <=> $b } keys %c)[0 .. 9]), substr($u, 0, 60);
PL
plain pl perl "$W/w.pl"
tsr pl perl "$W/w.pl"
same pl
reached pl 10000
say "$(cat "$W/pl.tsr" | cut -c1-100)"
