"""The online simulator: ground-truth users of a world answer served slates (`snsrec sim`)."""
