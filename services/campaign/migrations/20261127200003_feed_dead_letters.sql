-- Feed events the consumer could not read, parked with the reason instead of stopping the feed
-- (tierline_runtime::follower). The cursor moves past them; look at them and replay by hand.
CREATE TABLE feed_dead_letters (
    consumer  text NOT NULL,
    position  text NOT NULL,
    reason    text NOT NULL,
    payload   bytea NOT NULL,
    parked_at timestamptz NOT NULL,
    PRIMARY KEY (consumer, position)
);
