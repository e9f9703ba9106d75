"""The pages: server-rendered views on the gateway, one origin with the API (Whop adds its
user token only to same-origin requests). Each view is a module here with its controllers and
templates under `templates/<view>/`; `routes.py` lists the views and `site.py` serves them at
Whop's paths and under `/app`. Pages call the same downstream services and access rules as
the JSON routes."""
