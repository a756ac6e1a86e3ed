-- weft's PostgreSQL origin, schema version 2: partitions of the listings (docs/origin.md,
-- "Fewer round trips"), so that an edge loads a big team with several scans at once.
--
-- A partition must be defined by a key that does not move while the team changes: each row's
-- bucket is a hash of its ID (a membership's, of its user's), which never changes, in 1,024
-- buckets; partition i of n is the buckets from i*1024/n up to (i+1)*1024/n. Each index below
-- is a partition's keyset, walked in (bucket, key) order, so a partition reads only its rows.
--
-- Building them takes a lock that holds writes to each table for as long as its index takes
-- (the giant world: seconds): run this migration when a pause in writes is acceptable.

CREATE FUNCTION weft_bucket(id text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtext(id) & 1023
$$;

CREATE INDEX weft_users_bucket ON weft_users (team, weft_bucket(id), id);
CREATE INDEX weft_channels_bucket ON weft_channels (team, weft_bucket(id), id);
-- With updated included, a partition of memberships is read from the index alone once vacuum
-- has marked the table's pages all-visible.
CREATE INDEX weft_memberships_bucket ON weft_memberships (team, weft_bucket(user_id), user_id, channel) INCLUDE (updated);
