-- The write side as the start-up code created it before versioned migrations existed: pg_dump
-- --schema-only --no-owner --no-privileges of a fresh database after build_store(), without its
-- session settings. tests/integration/test_migrations.py upgrades it with 'quipu migrate'.
--
-- PostgreSQL database dump
--

--
-- Name: stored_event_uuid; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.stored_event_uuid AS (
	originator_id uuid,
	originator_version bigint,
	topic text,
	state bytea
);

--
-- Name: es_insert_events_uuid(public.stored_event_uuid[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.es_insert_events_uuid(events public.stored_event_uuid[]) RETURNS SETOF bigint
    LANGUAGE plpgsql
    AS $$BEGIN    SET LOCAL lock_timeout = '10s';    NOTIFY "quipu_events";    RETURN QUERY    INSERT INTO "public"."quipu_events" AS t (    originator_id, originator_version, topic, state)    SELECT originator_id, originator_version, topic, state    FROM unnest(events)    RETURNING notification_id;END;$$;

--
-- Name: quipu_refuse_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.quipu_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
            BEGIN
                RAISE EXCEPTION 'quipu: % on % is not allowed: events are immutable',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END $$;

--
-- Name: quipu_walk(uuid, text, boolean, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.quipu_walk(start uuid, tenant text, upward boolean, max_depth integer, max_nodes integer) RETURNS TABLE(event_id uuid, distance integer)
    LANGUAGE plpgsql STABLE
    AS $$
            DECLARE
                frontier uuid[] := ARRAY[start];
                seen uuid[] := ARRAY[start];
                level integer := 0;
                found integer := 0;
            BEGIN
                WHILE cardinality(frontier) > 0 AND level < max_depth AND found < max_nodes LOOP
                    level := level + 1;
                    IF upward THEN
                        SELECT coalesce(array_agg(DISTINCT p), '{}') INTO frontier
                        FROM public.event_dag d, unnest(d.parent_ids) AS p
                        WHERE d.event_id = ANY(frontier) AND d.tenant_id = tenant
                          AND NOT p = ANY(seen);
                    ELSE
                        SELECT coalesce(array_agg(DISTINCT e.child_id), '{}') INTO frontier
                        FROM public.event_edges e
                        WHERE e.parent_id = ANY(frontier) AND NOT e.child_id = ANY(seen);
                    END IF;
                    seen := seen || frontier;
                    found := found + cardinality(frontier);
                    RETURN QUERY SELECT f, level FROM unnest(frontier) AS f;
                END LOOP;
            END $$;

--
-- Name: event_dag; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_dag (
    event_id uuid NOT NULL,
    notification_id bigint NOT NULL,
    tenant_id text NOT NULL,
    stream_id uuid NOT NULL,
    version bigint NOT NULL,
    kind text NOT NULL,
    code integer NOT NULL,
    correlation_id uuid NOT NULL,
    parent_ids uuid[] NOT NULL,
    depth integer NOT NULL,
    hash character(64) NOT NULL,
    occurred_at timestamp with time zone NOT NULL
);

--
-- Name: event_edges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_edges (
    parent_id uuid NOT NULL,
    child_id uuid NOT NULL
);

--
-- Name: quipu_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.quipu_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigint NOT NULL
)
WITH (autovacuum_enabled='true', autovacuum_vacuum_threshold='100000000', autovacuum_vacuum_scale_factor='0.5', autovacuum_analyze_threshold='1000', autovacuum_analyze_scale_factor='0.01');

--
-- Name: quipu_events_notification_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.quipu_events_notification_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: quipu_events_notification_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.quipu_events_notification_id_seq OWNED BY public.quipu_events.notification_id;

--
-- Name: quipu_snapshots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.quipu_snapshots (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea
)
WITH (autovacuum_enabled='true', autovacuum_vacuum_threshold='100000000', autovacuum_vacuum_scale_factor='0.5', autovacuum_analyze_threshold='1000', autovacuum_analyze_scale_factor='0.01');

--
-- Name: quipu_events notification_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.quipu_events ALTER COLUMN notification_id SET DEFAULT nextval('public.quipu_events_notification_id_seq'::regclass);

--
-- Name: event_dag event_dag_notification_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_dag
    ADD CONSTRAINT event_dag_notification_id_key UNIQUE (notification_id);

--
-- Name: event_dag event_dag_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_dag
    ADD CONSTRAINT event_dag_pkey PRIMARY KEY (event_id);

--
-- Name: event_edges event_edges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_edges
    ADD CONSTRAINT event_edges_pkey PRIMARY KEY (parent_id, child_id);

--
-- Name: quipu_events quipu_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.quipu_events
    ADD CONSTRAINT quipu_events_pkey PRIMARY KEY (originator_id, originator_version);

--
-- Name: quipu_snapshots quipu_snapshots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.quipu_snapshots
    ADD CONSTRAINT quipu_snapshots_pkey PRIMARY KEY (originator_id, originator_version);

--
-- Name: event_dag_correlation_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX event_dag_correlation_idx ON public.event_dag USING btree (tenant_id, correlation_id, notification_id);

--
-- Name: event_dag_kind_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX event_dag_kind_idx ON public.event_dag USING btree (tenant_id, kind, depth);

--
-- Name: quipu_events_notification_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX quipu_events_notification_id_idx ON public.quipu_events USING btree (notification_id);

--
-- Name: event_dag event_dag_immutable_rows; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER event_dag_immutable_rows BEFORE DELETE OR UPDATE ON public.event_dag FOR EACH ROW EXECUTE FUNCTION public.quipu_refuse_change();

--
-- Name: event_dag event_dag_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER event_dag_no_truncate BEFORE TRUNCATE ON public.event_dag FOR EACH STATEMENT EXECUTE FUNCTION public.quipu_refuse_change();

--
-- Name: event_edges event_edges_immutable_rows; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER event_edges_immutable_rows BEFORE DELETE OR UPDATE ON public.event_edges FOR EACH ROW EXECUTE FUNCTION public.quipu_refuse_change();

--
-- Name: event_edges event_edges_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER event_edges_no_truncate BEFORE TRUNCATE ON public.event_edges FOR EACH STATEMENT EXECUTE FUNCTION public.quipu_refuse_change();

--
-- Name: quipu_events quipu_events_immutable_rows; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER quipu_events_immutable_rows BEFORE DELETE OR UPDATE ON public.quipu_events FOR EACH ROW EXECUTE FUNCTION public.quipu_refuse_change();

--
-- Name: quipu_events quipu_events_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER quipu_events_no_truncate BEFORE TRUNCATE ON public.quipu_events FOR EACH STATEMENT EXECUTE FUNCTION public.quipu_refuse_change();

--
-- Name: event_edges event_edges_child_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_edges
    ADD CONSTRAINT event_edges_child_id_fkey FOREIGN KEY (child_id) REFERENCES public.event_dag(event_id);

--
-- Name: event_edges event_edges_parent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_edges
    ADD CONSTRAINT event_edges_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.event_dag(event_id);

--
-- PostgreSQL database dump complete
--

