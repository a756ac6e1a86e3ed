-- weft in front of tables of your own: an example to adapt (docs/origin.md, "Your own tables").
--
-- Your application keeps its schema and its code. The triggers below copy each change of its
-- tables into weft's, in the same transaction; there weft's own triggers give the change its
-- team's next seq and its outbox event, so it is published exactly once, in order, and only
-- if your transaction commits. The end of this file copies the rows your tables hold already,
-- without events (an edge loads them as pages). Run it once, as one transaction, before the
-- origin serves: `psql --single-transaction -f mirror.sql`, or as it is (it has its own BEGIN
-- and COMMIT).
--
-- The application here (its tables are made by the test that runs this file,
-- yourtables_test.go) has workspaces, people, rooms, room members and posts, with bigint keys;
-- weft's IDs are text, so a person 42 is the user 'U42', a room 7 the channel 'C7'. Adapt the
-- column mapping to your tables, keep the shape:
--   - AFTER row triggers: they see the row as your statement left it;
--   - update triggers only WHEN a column weft serves changed: every change weft sees takes its
--     team's lock until commit (a team's changes take turns, for their seqs), so a column
--     written often that weft does not serve (last_seen) must not go through it;
--   - upserts on weft's primary keys, so a row that is already there is updated, and an
--     update that changes nothing weft serves makes no event;
--   - a deleted person is marked deleted in weft_users, not removed: clients still render
--     their old posts, and memberships reference the row.
-- A transaction of yours that writes several rows of one workspace should take its team's
-- lock first, SELECT weft_lock_team(workspace), so that it locks in the order every writer
-- does; otherwise two such transactions can deadlock (PostgreSQL ends one: retry it).
-- weft_messages keeps a copy of each post, which nothing reads after its event: delete old
-- rows when you like.

BEGIN;
-- Writes to these tables wait until the commit, so that no change falls between the copy at
-- the end and the triggers; reads go on.
LOCK TABLE app_workspaces, app_people, app_rooms, app_room_members, app_posts IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION app_workspaces_to_weft() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO weft_teams AS t (id, name, domain) VALUES (NEW.id, NEW.title, NEW.subdomain)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, domain = excluded.domain;
    RETURN NEW;
END $$;
CREATE TRIGGER app_workspaces_to_weft AFTER INSERT OR UPDATE ON app_workspaces
    FOR EACH ROW EXECUTE FUNCTION app_workspaces_to_weft();

CREATE FUNCTION app_people_to_weft() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE weft_users SET deleted = true WHERE team = OLD.workspace AND id = 'U' || OLD.id;
        RETURN OLD;
    END IF;
    INSERT INTO weft_users AS u (team, id, name, real_name, display_name, title, is_bot, deleted)
    VALUES (NEW.workspace, 'U' || NEW.id, NEW.handle, NEW.full_name, coalesce(NEW.nickname, ''),
            coalesce(NEW.job_title, ''), NEW.bot, NOT NEW.active)
    ON CONFLICT (team, id) DO UPDATE SET name = excluded.name, real_name = excluded.real_name,
        display_name = excluded.display_name, title = excluded.title, is_bot = excluded.is_bot,
        deleted = excluded.deleted;
    RETURN NEW;
END $$;
CREATE TRIGGER app_people_to_weft AFTER INSERT OR DELETE ON app_people
    FOR EACH ROW EXECUTE FUNCTION app_people_to_weft();
CREATE TRIGGER app_people_to_weft_update AFTER UPDATE ON app_people FOR EACH ROW
    WHEN ((OLD.workspace, OLD.handle, OLD.full_name, OLD.nickname, OLD.job_title, OLD.active, OLD.bot)
        IS DISTINCT FROM (NEW.workspace, NEW.handle, NEW.full_name, NEW.nickname, NEW.job_title, NEW.active, NEW.bot))
    EXECUTE FUNCTION app_people_to_weft();

CREATE FUNCTION app_rooms_to_weft() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- weft's trigger makes it channel_deleted; its memberships go with it, without events.
        DELETE FROM weft_channels WHERE team = OLD.workspace AND id = 'C' || OLD.id;
        RETURN OLD;
    END IF;
    INSERT INTO weft_channels AS c (team, id, name, purpose, is_private, is_archived, created, creator)
    VALUES (NEW.workspace, 'C' || NEW.id, NEW.slug, coalesce(NEW.about, ''), NEW.private, NEW.archived,
            NEW.created_at, 'U' || NEW.created_by)
    ON CONFLICT (team, id) DO UPDATE SET name = excluded.name, purpose = excluded.purpose,
        is_private = excluded.is_private, is_archived = excluded.is_archived;
    RETURN NEW;
END $$;
CREATE TRIGGER app_rooms_to_weft AFTER INSERT OR DELETE ON app_rooms
    FOR EACH ROW EXECUTE FUNCTION app_rooms_to_weft();
CREATE TRIGGER app_rooms_to_weft_update AFTER UPDATE ON app_rooms FOR EACH ROW
    WHEN ((OLD.workspace, OLD.slug, OLD.about, OLD.private, OLD.archived)
        IS DISTINCT FROM (NEW.workspace, NEW.slug, NEW.about, NEW.private, NEW.archived))
    EXECUTE FUNCTION app_rooms_to_weft();

CREATE FUNCTION app_room_members_to_weft() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM weft_memberships WHERE team = OLD.workspace AND channel = 'C' || OLD.room AND user_id = 'U' || OLD.person;
        RETURN OLD;
    END IF;
    INSERT INTO weft_memberships (team, channel, user_id) VALUES (NEW.workspace, 'C' || NEW.room, 'U' || NEW.person)
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER app_room_members_to_weft AFTER INSERT OR DELETE ON app_room_members
    FOR EACH ROW EXECUTE FUNCTION app_room_members_to_weft();

-- Posts are only events to weft (it keeps no history): a new post is a message.
CREATE FUNCTION app_posts_to_weft() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO weft_messages (team, channel, user_id, text, client_msg_id)
    VALUES (NEW.workspace, 'C' || NEW.room, 'U' || NEW.author, NEW.body, NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER app_posts_to_weft AFTER INSERT ON app_posts
    FOR EACH ROW EXECUTE FUNCTION app_posts_to_weft();

-- The rows your tables hold already, copied without events: weft's triggers make none and keep
-- no counts while weft.seeding is on, for the rest of this transaction only.
SET LOCAL weft.seeding = on;

INSERT INTO weft_teams (id, name, domain) SELECT id, title, subdomain FROM app_workspaces
    ON CONFLICT DO NOTHING;
INSERT INTO weft_users (team, id, name, real_name, display_name, title, is_bot, deleted)
    SELECT workspace, 'U' || id, handle, full_name, coalesce(nickname, ''), coalesce(job_title, ''), bot, NOT active
    FROM app_people ON CONFLICT DO NOTHING;
INSERT INTO weft_channels (team, id, name, purpose, is_private, is_archived, created, creator)
    SELECT workspace, 'C' || id, slug, coalesce(about, ''), private, archived, created_at, 'U' || created_by
    FROM app_rooms ON CONFLICT DO NOTHING;
INSERT INTO weft_memberships (team, channel, user_id)
    SELECT workspace, 'C' || room, 'U' || person FROM app_room_members ON CONFLICT DO NOTHING;
-- The memberships' trigger keeps member_count from now on; it made none of these.
UPDATE weft_channels c SET member_count = (SELECT count(*) FROM weft_memberships m WHERE m.team = c.team AND m.channel = c.id)
    WHERE c.team IN (SELECT id FROM app_workspaces);

COMMIT;
