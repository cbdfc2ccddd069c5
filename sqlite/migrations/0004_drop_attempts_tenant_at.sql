-- Every attempt row was written to four b-trees: the table and three indexes. attempts_tenant_at
-- served EndpointStats and AttemptHistogram over a whole tenant; they now find the tenant's
-- endpoints through endpoints_tenant and each endpoint's attempts through attempts_endpoint_at
-- (an attempt's endpoint belongs to its tenant), so that index only cost writes.
DROP INDEX attempts_tenant_at;
