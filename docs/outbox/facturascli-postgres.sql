-- An example for PostgreSQL: a FacturaScripts-like invoice table whose triggers write Aviso's
-- outbox. Each INSERT, UPDATE and DELETE of an invoice becomes one aviso_outbox row (type
-- invoice.created, invoice.updated or invoice.deleted) in the same transaction, with the
-- invoice's code as external_reference and data built from the row. Apply postgres.sql first.
--
-- The tenant is the Aviso tenant the company's events belong to: 'acme' here. With one database
-- per company, put that company's tenant id in the function; with several companies in one
-- database, build it from a column (e.g. 'empresa-' || f.idempresa).

CREATE TABLE IF NOT EXISTS facturascli (
    idfactura     serial PRIMARY KEY,
    codigo        varchar(20)   NOT NULL,
    codcliente    varchar(10)   NOT NULL,
    nombrecliente varchar(100)  NOT NULL DEFAULT '',
    fecha         date          NOT NULL DEFAULT CURRENT_DATE,
    total         numeric(15,2) NOT NULL DEFAULT 0,
    pagada        boolean       NOT NULL DEFAULT false
);

CREATE OR REPLACE FUNCTION facturascli_aviso_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    f     facturascli;
    etype text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        f := OLD; etype := 'invoice.deleted';
    ELSIF TG_OP = 'UPDATE' THEN
        f := NEW; etype := 'invoice.updated';
    ELSE
        f := NEW; etype := 'invoice.created';
    END IF;
    INSERT INTO aviso_outbox (tenant_id, type, external_reference, data)
    VALUES ('acme', etype, f.codigo, json_build_object(
        'idfactura', f.idfactura, 'codigo', f.codigo, 'codcliente', f.codcliente,
        'nombrecliente', f.nombrecliente, 'fecha', f.fecha, 'total', f.total, 'pagada', f.pagada));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS facturascli_aviso_outbox ON facturascli;
CREATE TRIGGER facturascli_aviso_outbox AFTER INSERT OR UPDATE OR DELETE ON facturascli
    FOR EACH ROW EXECUTE FUNCTION facturascli_aviso_outbox();
