-- An example for MariaDB and MySQL: a FacturaScripts-like invoice table whose triggers write
-- Aviso's outbox. Each INSERT, UPDATE and DELETE of an invoice becomes one aviso_outbox row (type
-- invoice.created, invoice.updated or invoice.deleted) in the same transaction, with the
-- invoice's code as external_reference and data built from the row. Apply mariadb.sql first.
-- Each trigger is a single statement, so the file needs no DELIMITER and runs as it is.
--
-- The tenant is the Aviso tenant the company's events belong to: 'acme' here. With one database
-- per company, put that company's tenant id in the triggers; with several companies in one
-- database, build it from a column (e.g. CONCAT('empresa-', NEW.idempresa)).

CREATE TABLE IF NOT EXISTS facturascli (
    idfactura     INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    codigo        VARCHAR(20)   NOT NULL,
    codcliente    VARCHAR(10)   NOT NULL,
    nombrecliente VARCHAR(100)  NOT NULL DEFAULT '',
    fecha         DATE          NOT NULL DEFAULT (CURRENT_DATE),
    total         DECIMAL(15,2) NOT NULL DEFAULT 0,
    pagada        BOOLEAN       NOT NULL DEFAULT FALSE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

DROP TRIGGER IF EXISTS facturascli_aviso_insert;
CREATE TRIGGER facturascli_aviso_insert AFTER INSERT ON facturascli FOR EACH ROW
    INSERT INTO aviso_outbox (tenant_id, type, external_reference, data)
    VALUES ('acme', 'invoice.created', NEW.codigo, JSON_OBJECT(
        'idfactura', NEW.idfactura, 'codigo', NEW.codigo, 'codcliente', NEW.codcliente,
        'nombrecliente', NEW.nombrecliente, 'fecha', NEW.fecha, 'total', NEW.total,
        'pagada', JSON_EXTRACT(IF(NEW.pagada, 'true', 'false'), '$')));

DROP TRIGGER IF EXISTS facturascli_aviso_update;
CREATE TRIGGER facturascli_aviso_update AFTER UPDATE ON facturascli FOR EACH ROW
    INSERT INTO aviso_outbox (tenant_id, type, external_reference, data)
    VALUES ('acme', 'invoice.updated', NEW.codigo, JSON_OBJECT(
        'idfactura', NEW.idfactura, 'codigo', NEW.codigo, 'codcliente', NEW.codcliente,
        'nombrecliente', NEW.nombrecliente, 'fecha', NEW.fecha, 'total', NEW.total,
        'pagada', JSON_EXTRACT(IF(NEW.pagada, 'true', 'false'), '$')));

DROP TRIGGER IF EXISTS facturascli_aviso_delete;
CREATE TRIGGER facturascli_aviso_delete AFTER DELETE ON facturascli FOR EACH ROW
    INSERT INTO aviso_outbox (tenant_id, type, external_reference, data)
    VALUES ('acme', 'invoice.deleted', OLD.codigo, JSON_OBJECT(
        'idfactura', OLD.idfactura, 'codigo', OLD.codigo, 'codcliente', OLD.codcliente,
        'nombrecliente', OLD.nombrecliente, 'fecha', OLD.fecha, 'total', OLD.total,
        'pagada', JSON_EXTRACT(IF(OLD.pagada, 'true', 'false'), '$')));
