"""The web face (`interview web`): server-rendered pages over bot.service, offline."""
