# The Flask receiver from TusFacturas' webhook document, as written, with two changes so that it
# can run against Aviso in a test: the token comes from the TF_WEBHOOK_TOKEN environment
# variable (as the document itself recommends), and the host, port and debug mode come from
# HOST, PORT and FLASK_DEBUG (the document hard-codes 0.0.0.0:5000 with debug=True).
#
#   TF_WEBHOOK_TOKEN=<the endpoint's token> PORT=5000 python3 app.py
#
# Aviso's tusfacturas format sends the token in TF-WebhookToken and external_reference at the top
# of the JSON body, so this receiver answers 200 to Aviso's deliveries and 403 to a wrong token.
import os
from flask import Flask, request, abort, jsonify
# Create a Flask application instance
app = Flask(__name__)
# --- Configuration ---
# Your secret token from TusFacturasAPP
# It's better practice to load this from environment variables
TF_WEBHOOK_TOKEN = os.environ.get('TF_WEBHOOK_TOKEN', 'TOKEN_TF')
# --- Webhook Endpoint ---
# This is the URL where TusFacturasAPP will send webhooks (e.g., http://yourserver.com:5000/webhook)
@app.route('/webhook', methods=['POST'])
def webhook():
    app.logger.info('Webhook received!')
    # 1. Get the token from the request headers
    # Headers in Flask's request.headers are case-insensitive by default, but it's good to check common casings.
    header_token = request.headers.get('TF-WebhookToken') or \
                   request.headers.get('tf-webhooktoken')
    # 2. Validate the token
    if header_token != TF_WEBHOOK_TOKEN:
        app.logger.warning('Unauthorized webhook access: Token mismatch.')
        # Use abort() for Flask to handle HTTP responses more cleanly
        abort(403, description='El Token recibido no coincide con el esperado')
    # 3. Token is valid, process the webhook data
    # request.json automatically parses JSON bodies
    data = request.json
    if not data:
        app.logger.error('No JSON data received in webhook request.')
        abort(400, description='No se recibió información en formato JSON.')
    app.logger.info(f'Webhook data: {data}')
    try:
        # Ensure 'external_reference' exists in the payload
        external_reference = data.get('external_reference')
        if external_reference:
            consultar_por_ext_ref(external_reference)
        else:
            app.logger.warning("Webhook data missing 'external_reference' key.")
        # 4. Respond with 200 OK to prevent re-attempts from TusFacturasAPP
        app.logger.info('Webhook processed successfully. Sending 200 OK.')
        return 'OK', 200
    except Exception as e:
        app.logger.error(f'Error processing webhook: {e}', exc_info=True)
        return 'OK (processed with internal error)', 200
# --- Helper Function (simulating PHP's consultar_por_ext_ref) ---
def consultar_por_ext_ref(ext_ref: str):
    """
    Simulates a function to consult information associated with an external reference.
    """
    app.logger.info(f'Consulting info for external_reference: {ext_ref}')
    # Marker line read by Aviso's interop test: the receiver reached its business logic.
    print(f'CONSULTED {ext_ref}', flush=True)
# --- Start the server ---
if __name__ == '__main__':
    app.run(host=os.environ.get('HOST', '0.0.0.0'), port=int(os.environ.get('PORT', '5000')),
            debug=os.environ.get('FLASK_DEBUG') == '1')
