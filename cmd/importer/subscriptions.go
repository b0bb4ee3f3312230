package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
)

// The subcommands of 'importer webhooks' that manage Propexo's webhook
// subscriptions (/v1/webhooks/): register, list, delete.

// subscriptionAPI is the API settings of the subscription commands.
type subscriptionAPI struct{ api apiSettings }

func (s *subscriptionAPI) client(ctx context.Context) (*propexo.Client, error) {
	if err := s.api.resolveKey(); err != nil {
		return nil, err
	}
	u, key, err := s.api.endpoint()
	if err != nil {
		return nil, err
	}
	return newAPIClient(ctx, u, key, s.api.timeout, nil, false)
}

// subscriptionError tells an API failure of a subscription command in one
// line: a refused request or key is the user's to mend (exit 2), an API out
// of reach is not (exit 3).
func subscriptionError(op string, err error) error {
	var apiErr *importer.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Kind {
		case importer.KindRejected, importer.KindNotFound:
			return usageError("%s: the API refused it: %s", op, cmp.Or(apiErr.Message, apiErr.Error()))
		case importer.KindUnauthorized:
			return usageError("%s: the API rejected the API key (%d): check PROPEXO_API_KEY", op, apiErr.Status)
		}
	}
	return unfinished(fmt.Errorf("%s: %w", op, err))
}

func newWebhooksRegisterCommand(getenv env, stdout io.Writer) *cobra.Command {
	var s subscriptionAPI
	var hookURL string
	cmd := &cobra.Command{
		Use:   "register --url URL",
		Short: "Subscribe the importer's webhook receiver to Propexo's webhooks",
		Long: `register subscribes URL (where 'importer webhooks' or 'importer worker
--webhooks-addr' listens, as the internet reaches it) to the webhooks the
importer follows: WRITE_OPERATION_FAILURE, and DATA_NEW and DATA_UPDATE of
residents. The deliveries are signed with PROPEXO_WEBHOOK_SECRET (at least
10 characters), which the receiver checks; the secret is sent to the API and
never printed. The subscription is active at once.

Registering again is safe: a subscription to URL that has all of this is
left as it is, one that lacks some of it (a trigger, the secret, active) is
updated, and only a URL with none gets a new one.`,
		Example: `  PROPEXO_API_KEY=... PROPEXO_WEBHOOK_SECRET=... importer webhooks register --url https://importer.example.com/webhooks/propexo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(hookURL)
			if hookURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return usageError("--url %q: give the receiver's address as the API reaches it, e.g. https://importer.example.com/webhooks/propexo", hookURL)
			}
			secret := getenv("PROPEXO_WEBHOOK_SECRET")
			if len(secret) < importer.MinWebhookSecret {
				return usageError("PROPEXO_WEBHOOK_SECRET must hold at least %d characters: the API signs each delivery with it and the receiver checks it", importer.MinWebhookSecret)
			}
			client, err := s.client(cmd.Context())
			if err != nil {
				return err
			}
			subs, err := client.Subscriptions(cmd.Context())
			if err != nil {
				return subscriptionError("listing the webhooks", err)
			}
			plan := importer.PlanSubscription(subs, hookURL, secret)
			var sub importer.WebhookSubscription
			switch {
			case plan.ID == "":
				if sub, err = client.Subscribe(cmd.Context(), hookURL, secret, importer.WebhookTriggers, importer.WebhookModel); err != nil {
					return subscriptionError("registering the webhook", err)
				}
				fmt.Fprintf(stdout, "webhook %s registered: %s receives %s (model %s)\n", sub.ID, sub.URL, strings.Join(sub.Triggers, ", "), sub.Model)
			case plan.Update:
				if sub, err = client.UpdateSubscription(cmd.Context(), plan.ID, secret, importer.WebhookTriggers, importer.WebhookModel); err != nil {
					return subscriptionError("updating webhook "+plan.ID, err)
				}
				fmt.Fprintf(stdout, "webhook %s updated: %s receives %s (model %s)\n", sub.ID, sub.URL, strings.Join(sub.Triggers, ", "), sub.Model)
			default:
				fmt.Fprintf(stdout, "webhook %s already registered: %s receives %s (model %s); nothing changed\n", plan.ID, hookURL, strings.Join(importer.WebhookTriggers, ", "), importer.WebhookModel)
			}
			return nil
		},
	}
	s.api.register(cmd.Flags(), getenv)
	cmd.Flags().StringVar(&hookURL, "url", "", "the receiver's URL as the API reaches it (required)")
	return cmd
}

func newWebhooksListCommand(getenv env, stdout io.Writer) *cobra.Command {
	var s subscriptionAPI
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List Propexo's webhook subscriptions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := s.client(cmd.Context())
			if err != nil {
				return err
			}
			subs, err := client.Subscriptions(cmd.Context())
			if err != nil {
				return subscriptionError("listing the webhooks", err)
			}
			if len(subs) == 0 {
				fmt.Fprintln(stdout, "no webhook subscriptions")
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tACTIVE\tURL\tTRIGGERS\tMODEL\tCREATED")
			for _, sub := range subs {
				created := ""
				if !sub.CreatedAt.IsZero() {
					created = sub.CreatedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\n", sub.ID, sub.Active, sub.URL, strings.Join(sub.Triggers, ","), sub.Model, created)
			}
			return tw.Flush()
		},
	}
	s.api.register(cmd.Flags(), getenv)
	return cmd
}

func newWebhooksDeleteCommand(getenv env, stdout io.Writer) *cobra.Command {
	var s subscriptionAPI
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a Propexo webhook subscription",
		Args:  exactlyOne("webhooks delete", "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := s.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := client.Unsubscribe(cmd.Context(), args[0]); err != nil {
				return subscriptionError("deleting webhook "+args[0], err)
			}
			fmt.Fprintf(stdout, "webhook %s deleted\n", args[0])
			return nil
		},
	}
	s.api.register(cmd.Flags(), getenv)
	return cmd
}
