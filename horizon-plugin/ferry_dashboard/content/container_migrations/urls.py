"""The panel's pages: the tabs, the Live Migrate form and a migration's details."""
from django.urls import re_path

from ferry_dashboard.content.container_migrations import views

urlpatterns = [
    re_path(r'^$', views.IndexView.as_view(), name='index'),
    re_path(r'^containers/(?P<container_id>[^/]+)/migrate/$', views.MigrateView.as_view(),
            name='migrate'),
    re_path(r'^hosts/(?P<host>[^/]+)/evacuate/$', views.EvacuateView.as_view(),
            name='evacuate'),
    re_path(r'^migrations/(?P<migration_id>[^/]+)/$', views.DetailView.as_view(),
            name='detail'),
]
