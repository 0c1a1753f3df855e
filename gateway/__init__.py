"""dlp-gateway: the outbound email DLP service (SMTP → parse → extract → detect → decide → act)."""
