-- weft's PostgreSQL origin, schema version 1: the system of record (teams, users, channels,
-- memberships, messages) and the transactional outbox the publisher reads (docs/origin.md).
--
-- Every change to a team, made by the origin's own API or by any program writing these tables
-- with SQL, passes a trigger that, in the same transaction:
--   1. takes the team's next seq from its row in weft_teams (UPDATE … RETURNING: the row stays
--      locked until commit, so a team's changes commit one at a time, in seq order, and a
--      rolled-back change gives its number back: the sequence has no gap);
--   2. stamps the changed row's version, updated = seq + 1 (the reference origin's rule: every
--      change is newer than the base version 1, and pages and events sort out by it);
--   3. writes the change's event, as docs/origin.md's JSON, to weft_outbox under (team, seq);
--   4. notifies weft_outbox with the team ID (delivered at commit), waking the publisher.
-- Bulk loads (postgres.Seed) set weft.seeding = on for their transaction: rows then keep their
-- own updated, and no event is made.

CREATE TABLE weft_teams (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,255}$'),
    name          text NOT NULL,
    domain        text NOT NULL DEFAULT '',
    updated       bigint NOT NULL DEFAULT 1 CHECK (updated > 0),
    seq           bigint NOT NULL DEFAULT 0 -- the last seq given to a change of the team
);

-- How far the publisher got: its own row per team, so that marking progress never waits for
-- a writer holding the team's row (weft_next_seq) until its commit.
CREATE TABLE weft_published (
    team text PRIMARY KEY REFERENCES weft_teams (id),
    seq  bigint NOT NULL DEFAULT 0 -- the last seq the stream acknowledged
);

CREATE TABLE weft_users (
    team         text NOT NULL REFERENCES weft_teams (id),
    id           text NOT NULL CHECK (octet_length(id) BETWEEN 1 AND 255),
    name         text NOT NULL,
    real_name    text NOT NULL DEFAULT '',
    display_name text NOT NULL DEFAULT '',
    title        text NOT NULL DEFAULT '',
    avatar_url   text NOT NULL DEFAULT '',
    tz           text NOT NULL DEFAULT '',
    is_bot       boolean NOT NULL DEFAULT false,
    deleted      boolean NOT NULL DEFAULT false,
    updated      bigint NOT NULL DEFAULT 1 CHECK (updated > 0),
    PRIMARY KEY (team, id) -- the users listing's keyset
);

CREATE TABLE weft_channels (
    team         text NOT NULL REFERENCES weft_teams (id),
    id           text NOT NULL CHECK (octet_length(id) BETWEEN 1 AND 255),
    name         text NOT NULL,
    topic        text NOT NULL DEFAULT '',
    purpose      text NOT NULL DEFAULT '',
    is_private   boolean NOT NULL DEFAULT false,
    is_archived  boolean NOT NULL DEFAULT false,
    created      timestamptz NOT NULL DEFAULT now(),
    creator      text NOT NULL DEFAULT '',
    member_count integer NOT NULL DEFAULT 0, -- kept by the memberships' trigger
    updated      bigint NOT NULL DEFAULT 1 CHECK (updated > 0),
    PRIMARY KEY (team, id) -- the channels listing's keyset
);

CREATE TABLE weft_memberships (
    team    text NOT NULL,
    channel text NOT NULL,
    user_id text NOT NULL,
    updated bigint NOT NULL DEFAULT 1 CHECK (updated > 0),
    PRIMARY KEY (team, channel, user_id), -- the memberships listing's keyset
    FOREIGN KEY (team, channel) REFERENCES weft_channels (team, id) ON DELETE CASCADE,
    FOREIGN KEY (team, user_id) REFERENCES weft_users (team, id)
);
CREATE INDEX weft_memberships_user ON weft_memberships (team, user_id);

CREATE TABLE weft_messages (
    -- Its own key: two messages of one person may share a ts (the default's microseconds, from
    -- two connections at once).
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team          text NOT NULL,
    channel       text NOT NULL,
    user_id       text NOT NULL,
    ts            text NOT NULL DEFAULT (extract(epoch FROM clock_timestamp())::numeric(20, 6))::text, -- Slack's form
    text          text NOT NULL CHECK (text <> ''),
    client_msg_id text NOT NULL DEFAULT '',
    mentions      text[] NOT NULL DEFAULT '{}',
    seq           bigint NOT NULL DEFAULT 0, -- the event's
    FOREIGN KEY (team, channel) REFERENCES weft_channels (team, id) ON DELETE CASCADE,
    FOREIGN KEY (team, user_id) REFERENCES weft_users (team, id)
);
CREATE INDEX weft_messages_channel ON weft_messages (team, channel, ts);

CREATE TABLE weft_outbox (
    team    text NOT NULL,
    seq     bigint NOT NULL,
    event   jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, seq) -- the publisher reads a team's events in seq order
);
CREATE INDEX weft_outbox_created ON weft_outbox (created); -- pruning

-- weft_next_seq takes a team's next seq and locks its row until the transaction ends.
CREATE FUNCTION weft_next_seq(t text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
    UPDATE weft_teams SET seq = seq + 1 WHERE id = t RETURNING seq INTO s;
    IF s IS NULL THEN
        RAISE EXCEPTION 'weft: no team %', t USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN s;
END $$;

-- weft_emit records a team's event under its seq and wakes the publisher at commit.
CREATE FUNCTION weft_emit(t text, s bigint, body jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO weft_outbox (team, seq, event) VALUES (t, s, jsonb_build_object('team', t, 'seq', s) || body);
    PERFORM pg_notify('weft_outbox', t);
END $$;

CREATE FUNCTION weft_seeding() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('weft.seeding', true), '') = 'on'
$$;

CREATE FUNCTION weft_user_json(u weft_users) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'team', u.team, 'name', u.name, 'real_name', u.real_name,
        'display_name', u.display_name, 'title', u.title, 'avatar_url', u.avatar_url, 'tz', u.tz,
        'is_bot', u.is_bot, 'deleted', u.deleted, 'updated', u.updated)
$$;

CREATE FUNCTION weft_channel_json(c weft_channels) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', c.id, 'team', c.team, 'name', c.name, 'topic', c.topic,
        'purpose', c.purpose, 'is_private', c.is_private, 'is_archived', c.is_archived,
        'created', to_char(c.created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'creator', c.creator, 'member_count', c.member_count, 'updated', c.updated)
$$;

-- Users: a new or changed user is a user_change with the whole User; deleting the row is one
-- too, with deleted set (weft keeps deleted users: clients still render their old messages).
CREATE FUNCTION weft_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint; u weft_users;
BEGIN
    IF weft_seeding() THEN RETURN coalesce(NEW, OLD); END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    IF TG_OP = 'DELETE' THEN u := OLD; u.deleted := true; ELSE u := NEW; END IF;
    s := weft_next_seq(u.team);
    u.updated := s + 1;
    PERFORM weft_emit(u.team, s, jsonb_build_object('type', 'user_change', 'user', weft_user_json(u)));
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    NEW.updated := s + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER weft_users_changed BEFORE INSERT OR UPDATE OR DELETE ON weft_users
    FOR EACH ROW EXECUTE FUNCTION weft_users_changed();

-- Channels: channel_created, channel_change (a change of member_count alone, which the
-- memberships' trigger makes, is no change: weft counts memberships itself), channel_deleted.
CREATE FUNCTION weft_channels_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
    IF weft_seeding() THEN RETURN coalesce(NEW, OLD); END IF;
    IF TG_OP = 'UPDATE' AND (NEW.name, NEW.topic, NEW.purpose, NEW.is_private, NEW.is_archived, NEW.created, NEW.creator)
            IS NOT DISTINCT FROM (OLD.name, OLD.topic, OLD.purpose, OLD.is_private, OLD.is_archived, OLD.created, OLD.creator) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        s := weft_next_seq(OLD.team);
        PERFORM weft_emit(OLD.team, s, jsonb_build_object('type', 'channel_deleted', 'channel', OLD.id, 'updated', s + 1));
        RETURN OLD;
    END IF;
    s := weft_next_seq(NEW.team);
    NEW.updated := s + 1;
    PERFORM weft_emit(NEW.team, s, jsonb_build_object('type',
        CASE TG_OP WHEN 'INSERT' THEN 'channel_created' ELSE 'channel_change' END, 'channel', weft_channel_json(NEW)));
    RETURN NEW;
END $$;
CREATE TRIGGER weft_channels_changed BEFORE INSERT OR UPDATE OR DELETE ON weft_channels
    FOR EACH ROW EXECUTE FUNCTION weft_channels_changed();

-- Memberships: member_joined and member_left, each with the change's version; the channel's
-- member_count follows (without an event of its own, above).
CREATE FUNCTION weft_memberships_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
    IF weft_seeding() THEN RETURN coalesce(NEW, OLD); END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.team, NEW.channel, NEW.user_id) IS DISTINCT FROM (OLD.team, OLD.channel, OLD.user_id) THEN
            RAISE EXCEPTION 'weft: a membership cannot be moved: delete it and insert another';
        END IF;
        RETURN NEW; -- nothing a client sees changed
    END IF;
    IF TG_OP = 'DELETE' THEN
        -- A channel's deletion cascades to its memberships: its channel_deleted says it all.
        IF NOT EXISTS (SELECT 1 FROM weft_channels WHERE team = OLD.team AND id = OLD.channel) THEN
            RETURN OLD;
        END IF;
        s := weft_next_seq(OLD.team);
        PERFORM weft_emit(OLD.team, s, jsonb_build_object('type', 'member_left', 'user', OLD.user_id, 'channel', OLD.channel, 'updated', s + 1));
        UPDATE weft_channels SET member_count = member_count - 1 WHERE team = OLD.team AND id = OLD.channel;
        RETURN OLD;
    END IF;
    s := weft_next_seq(NEW.team);
    NEW.updated := s + 1;
    PERFORM weft_emit(NEW.team, s, jsonb_build_object('type', 'member_joined', 'user', NEW.user_id, 'channel', NEW.channel, 'updated', s + 1));
    UPDATE weft_channels SET member_count = member_count + 1 WHERE team = NEW.team AND id = NEW.channel;
    RETURN NEW;
END $$;
CREATE TRIGGER weft_memberships_changed BEFORE INSERT OR UPDATE OR DELETE ON weft_memberships
    FOR EACH ROW EXECUTE FUNCTION weft_memberships_changed();

-- Messages: a new message is a message event. Messages are not part of a team's snapshot
-- (weft keeps no history), so editing or deleting one makes no event here.
CREATE FUNCTION weft_messages_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
    IF weft_seeding() THEN RETURN NEW; END IF;
    s := weft_next_seq(NEW.team);
    NEW.seq := s;
    PERFORM weft_emit(NEW.team, s, jsonb_strip_nulls(jsonb_build_object('type', 'message', 'user', NEW.user_id,
        'channel', NEW.channel, 'ts', NEW.ts, 'text', NEW.text,
        'client_msg_id', nullif(NEW.client_msg_id, ''),
        'mentions', CASE WHEN cardinality(NEW.mentions) > 0 THEN to_jsonb(NEW.mentions) END)));
    RETURN NEW;
END $$;
CREATE TRIGGER weft_messages_changed BEFORE INSERT ON weft_messages
    FOR EACH ROW EXECUTE FUNCTION weft_messages_changed();

-- Teams: a new name or domain is a team_change with the whole Team (the seq counters'
-- updates are not changes of the team). A team is created without an event: its first
-- change is seq 1.
CREATE FUNCTION weft_teams_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
    IF weft_seeding() OR (NEW.name, NEW.domain) IS NOT DISTINCT FROM (OLD.name, OLD.domain) THEN
        RETURN NEW;
    END IF;
    -- The team's own row: take the seq here rather than through weft_next_seq, which would
    -- update the row this trigger is updating.
    NEW.seq := OLD.seq + 1;
    s := NEW.seq;
    NEW.updated := s + 1;
    PERFORM weft_emit(NEW.id, s, jsonb_build_object('type', 'team_change', 'team', jsonb_build_object(
        'id', NEW.id, 'name', NEW.name, 'domain', NEW.domain,
        'user_count', (SELECT count(*) FROM weft_users WHERE team = NEW.id),
        'channel_count', (SELECT count(*) FROM weft_channels WHERE team = NEW.id),
        'updated', NEW.updated)));
    RETURN NEW;
END $$;
CREATE TRIGGER weft_teams_changed BEFORE UPDATE ON weft_teams
    FOR EACH ROW EXECUTE FUNCTION weft_teams_changed();
