"""`make bench`: cold start, debit overhead, contention, cost model and package size, each
figure a ratio against a floor measured in the same run on the same machine."""
