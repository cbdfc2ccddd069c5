-- Aviso's transactional outbox for MariaDB (10.6 or later) and MySQL (8.0 or later).
--
-- The application inserts one row into aviso_outbox in the same transaction as the change it
-- reports; `aviso serve --outbox mysql://…` publishes each committed row as an event, then
-- deletes it (or sets relayed_at, with --outbox-keep). Rows the relay cannot publish (unknown
-- tenant or type, data that fails the type's schema) move to aviso_outbox_rejected with the
-- reason. See docs/outbox.md. MariaDB has no NOTIFY: the relay polls (every 100 ms by default).
--
-- Apply it once, in the application's database: mariadb -u root facturascripts < mariadb.sql

CREATE TABLE IF NOT EXISTS aviso_outbox (
    id                 BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id          VARCHAR(255) NOT NULL,
    type               VARCHAR(255) NOT NULL,
    external_reference VARCHAR(255) NULL,
    data               JSON NOT NULL,
    event_id           VARCHAR(255) NULL,  -- NULL: Aviso derives the event id from the source and id
    created_at         TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    relayed_at         TIMESTAMP(6) NULL DEFAULT NULL,  -- set instead of deleting, with --outbox-keep
    -- The relay reads the rows not yet relayed, in id order.
    KEY aviso_outbox_unrelayed (relayed_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS aviso_outbox_rejected (
    id                 BIGINT NOT NULL PRIMARY KEY,  -- the row's id in aviso_outbox
    tenant_id          VARCHAR(255) NOT NULL,
    type               VARCHAR(255) NOT NULL,
    external_reference VARCHAR(255) NULL,
    data               LONGTEXT NOT NULL,
    event_id           VARCHAR(255) NULL,
    created_at         TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    rejected_at        TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    reason             TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
