"""`tokenmw bench`: the seed scenario in three modes (private)."""
