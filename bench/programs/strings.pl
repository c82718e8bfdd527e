# strings.pl -- a string- and hash-heavy Perl program for the allocator
# benchmark. Perl grows strings in place with realloc and allocates every
# scalar, array and hash bucket with malloc, so this builds and drops nested
# hashes of arrays, joins and splits long strings and sorts keys. It prints
# "CHECK <n>", a value of the computation only.
# Usage: perl strings.pl [ROUNDS [KEYS]]   (the runner scales both)
use strict;
use warnings;

my $rounds = shift // 10;
my $keys = shift // 30000;
my $check = 0;
for my $r (1 .. $rounds) {
    my %h;
    for my $i (1 .. $keys) {
        my $k = "key" . (($i * 7919 + $r) % 50000);
        push @{ $h{$k} }, $i, "v$i" x (1 + $i % 5);
    }
    my $s = '';
    for my $k (sort keys %h) {
        $s .= join(':', @{ $h{$k} }) . ';';
    }
    my @parts = split /;/, $s;
    my %len;
    $len{ length $_ }++ for @parts;
    $check = ($check * 31 + scalar(keys %h) + length($s) + scalar(keys %len)) % 1000000007;
}
print "CHECK $check\n";
