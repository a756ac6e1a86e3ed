-- weft's PostgreSQL origin, schema version 3: INSERT … ON CONFLICT on weft's tables makes the
-- events of what it did, and no other.
--
-- PostgreSQL runs a BEFORE INSERT row trigger before it finds the conflict, so in versions 1
-- and 2 an upsert of a row that was there made a creation event (a user_change, a
-- channel_created, a member_joined, with a seq), and a membership inserted ON CONFLICT DO
-- NOTHING counted in its channel's member_count, though nothing was inserted; the update an
-- upsert turns into then made its own event. Now the insert trigger first takes the team's row
-- lock (every change of the team waits on it, so a row another transaction inserts is
-- committed or gone by then) and makes nothing for a row already there: the statement then
-- updates it (its update trigger makes the event, if anything changed), does nothing, or fails
-- on the key, which rolls the transaction back anyway. The seq is taken after the check, so a
-- skipped insert leaves no gap.

-- weft_lock_team locks a team's row until the transaction ends, as weft_next_seq's UPDATE
-- does, and in the same mode: FOR NO KEY UPDATE conflicts with itself and with that UPDATE, so
-- a team's changes still take turns, but not with the KEY SHARE lock every foreign key check
-- against weft_teams takes (FOR UPDATE would, and then two writers that had each checked a
-- key to the team would deadlock). An application that writes several rows of a team in one
-- transaction takes it first (SELECT weft_lock_team('T1')): its writes then lock the team
-- before any row, in the order every other writer does.
CREATE FUNCTION weft_lock_team(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM weft_teams WHERE id = t FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'weft: no team %', t USING ERRCODE = 'foreign_key_violation';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION weft_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint; u weft_users;
BEGIN
    IF weft_seeding() THEN RETURN coalesce(NEW, OLD); END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM weft_lock_team(NEW.team);
        IF EXISTS (SELECT 1 FROM weft_users WHERE team = NEW.team AND id = NEW.id) THEN RETURN NEW; END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN u := OLD; u.deleted := true; ELSE u := NEW; END IF;
    s := weft_next_seq(u.team);
    u.updated := s + 1;
    PERFORM weft_emit(u.team, s, jsonb_build_object('type', 'user_change', 'user', weft_user_json(u)));
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    NEW.updated := s + 1;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION weft_channels_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF TG_OP = 'INSERT' THEN
        PERFORM weft_lock_team(NEW.team);
        IF EXISTS (SELECT 1 FROM weft_channels WHERE team = NEW.team AND id = NEW.id) THEN RETURN NEW; END IF;
    END IF;
    s := weft_next_seq(NEW.team);
    NEW.updated := s + 1;
    PERFORM weft_emit(NEW.team, s, jsonb_build_object('type',
        CASE TG_OP WHEN 'INSERT' THEN 'channel_created' ELSE 'channel_change' END, 'channel', weft_channel_json(NEW)));
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION weft_memberships_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
    PERFORM weft_lock_team(NEW.team);
    IF EXISTS (SELECT 1 FROM weft_memberships WHERE team = NEW.team AND channel = NEW.channel AND user_id = NEW.user_id) THEN
        RETURN NEW;
    END IF;
    s := weft_next_seq(NEW.team);
    NEW.updated := s + 1;
    PERFORM weft_emit(NEW.team, s, jsonb_build_object('type', 'member_joined', 'user', NEW.user_id, 'channel', NEW.channel, 'updated', s + 1));
    UPDATE weft_channels SET member_count = member_count + 1 WHERE team = NEW.team AND id = NEW.channel;
    RETURN NEW;
END $$;
