-- Every invoice's total is the sum of its lines, and its subtotal the sum of the lines above
-- the discount (sums of rounded lines, spec section 7).
with line_sums as (
    select
        invoice_id,
        sum(amount) as lines_total,
        sum(case when line_type in ('fixed_fee', 'usage', 'minimum_commitment') then amount else 0 end)
            as lines_subtotal
    from {{ ref('invoice_lines') }}
    group by invoice_id
)
select invoices.invoice_id, invoices.subtotal, invoices.total, line_sums.lines_subtotal, line_sums.lines_total
from {{ ref('invoices') }} as invoices
left join line_sums on line_sums.invoice_id = invoices.invoice_id
where line_sums.invoice_id is null
   or invoices.total <> line_sums.lines_total
   or invoices.subtotal <> line_sums.lines_subtotal
