"""Warn and confirm: a sender whose message looks risky is asked, and answers by link or reply.

``service.ConfirmService`` is what the SMTP path, the web routes and the expiry
task call; the other modules each do one part of it (tokens, notice eligibility
and rate limits, the summary a sender sees, notice rendering, the confirmation
ledger, reply parsing, web pages).
"""
